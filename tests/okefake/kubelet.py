"""The nodes of the pretend OKE cluster: runs its pods on this machine, as a kubelet would.

The fake kubectl (kubectl.py) is the API server: it stores objects in the state file. This thread watches
that file and does what the nodes do:
- a Job that has not ended is run once (`pods.run_job`), and its end (Complete or Failed, as `status.conditions`)
  and its log (`kubectl logs job/NAME`) are written back. A Job deleted and applied again is a new Job;
- a Deployment whose generation it has not seen is (re)started with its new spec (`pods.serve`), and its
  status says that generation is ready, or why it is not (`rollout status` reads it).
What a pod sees is what kubectl.py's Cluster.pod_env makes of its ConfigMaps, Secrets and env.
"""
from __future__ import annotations

import threading
from typing import Protocol

from .kubectl import FAILED, Cluster, locked


class Pods(Protocol):
    def run_job(self, name: str, container: dict, env: dict) -> tuple[int, list[str]]:
        """Runs a Job's container to its end: (exit code, log lines)."""

    def serve(self, name: str, container: dict, env: dict, replicas: int) -> str | None:
        """(Re)starts a Deployment's pods with this container (replicas 0: stops them); returns once they are
        ready (None) or why they will not be."""


class Kubelet:
    def __init__(self, state_file, pods: Pods, namespace: str = "mlflow"):
        self.state_file, self.pods, self.namespace = state_file, pods, namespace
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._ran: set[str] = set()
        self._served: dict[str, int] = {}

    def start(self) -> "Kubelet":
        with locked(self.state_file) as cluster:
            cluster.data["kubelet"] = True
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self.errors, self.errors

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self._step()
            except Exception as exc:  # reported by stop()
                self.errors.append(repr(exc))

    def _step(self) -> None:
        with locked(self.state_file) as cluster:
            jobs = [(key, obj) for key, obj in cluster.objects.items()
                    if key.startswith(f"Job/{self.namespace}/") and _pending(obj) and _uid(obj) not in self._ran]
            deployments = [(key, obj) for key, obj in cluster.objects.items()
                           if key.startswith(f"Deployment/{self.namespace}/")
                           and self._served.get(key) != obj["metadata"].get("generation")]
            work = [(key, obj, self._env(cluster, obj)) for key, obj in jobs + deployments]
        for key, obj, env in work:
            if obj["kind"] == "Job":
                self._run_job(key, obj, env)
            else:
                self._serve(key, obj, env)

    def _env(self, cluster: Cluster, obj: dict) -> dict:
        return cluster.pod_env(obj["spec"]["template"]["spec"], self.namespace)

    def _run_job(self, key: str, job: dict, env: dict) -> None:
        self._ran.add(_uid(job))
        container = job["spec"]["template"]["spec"]["containers"][0]
        code, lines = self.pods.run_job(job["metadata"]["name"], container, env)
        with locked(self.state_file) as cluster:
            current = cluster.objects.get(key)
            if current is None or _uid(current) != _uid(job):
                return  # deleted (or replaced) while it ran
            current["status"] = ({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
                                 if code == 0 else FAILED)
            cluster.data.setdefault("logs", {})[f"Job/{job['metadata']['name']}"] = lines

    def _serve(self, key: str, deployment: dict, env: dict) -> None:
        generation = deployment["metadata"].get("generation")
        self._served[key] = generation
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        replicas = deployment["spec"].get("replicas", 1)
        problem = self.pods.serve(deployment["metadata"]["name"], container, env, replicas)
        with locked(self.state_file) as cluster:
            current = cluster.objects.get(key)
            if current is None or current["metadata"].get("generation") != generation:
                return  # changed again meanwhile: the next step serves the new generation
            current["status"] = {"observedGeneration": generation, "replicas": replicas,
                                 "readyReplicas": 0 if problem else replicas, **({"failed": problem} if problem else {})}


def _pending(job: dict) -> bool:
    return not any(c.get("status") == "True" and c.get("type") in ("Complete", "Failed")
                   for c in job.get("status", {}).get("conditions") or [])


def _uid(obj: dict) -> str:
    return obj["metadata"].get("uid", "")
