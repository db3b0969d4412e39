"""kubectl, run for orm-pack with the cluster's kubeconfig and the deployment's namespace.

Everything kubectl says on failure is kept for the error message; nothing here prints.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from orm_pack.errors import ExitCode, UserError


def find(explicit: str | None) -> str:
    """The kubectl binary: --kubectl, else the one on PATH."""
    found = shutil.which(explicit or "kubectl")
    if not found:
        raise UserError(f"{explicit or 'kubectl'} not found: install kubectl (it renders the manifests with "
                        "`kubectl kustomize` and applies them) or pass --kubectl PATH", ExitCode.USAGE)
    return found


class Kubectl:
    def __init__(self, binary: str, kubeconfig: Path, namespace: str):
        self.binary, self.kubeconfig, self.namespace = binary, kubeconfig, namespace

    def run(self, *args: str, stdin: str | None = None, timeout: float = 120, check: bool = True,
            stream=None) -> subprocess.CompletedProcess:
        """kubectl ARGS in the namespace. `stream(line)` receives stdout lines as they come."""
        argv = [self.binary, "--kubeconfig", str(self.kubeconfig), "--namespace", self.namespace, *args]
        if stream is None:
            result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)
        else:
            with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
                for line in process.stdout:
                    stream(line.rstrip("\n"))
                stderr = process.stderr.read()
                process.wait(timeout=timeout)
            result = subprocess.CompletedProcess(argv, process.returncode, "", stderr)
        if check and result.returncode != 0:
            raise UserError(f"kubectl {' '.join(args[:2])} failed: {result.stderr.strip()[-1500:]}", ExitCode.FAILURE)
        return result

    def apply(self, documents: list[dict]) -> None:
        self.run("apply", "--filename", "-", stdin=yaml.safe_dump_all(documents, sort_keys=False))

    def create(self, documents: list[dict]) -> None:
        self.run("create", "--filename", "-", stdin=yaml.safe_dump_all(documents, sort_keys=False))

    def get(self, kind: str, name: str) -> dict | None:
        result = self.run("get", f"{kind}/{name}", "--output", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr or "not found" in result.stderr:
                return None
            raise UserError(f"kubectl get {kind}/{name} failed: {result.stderr.strip()[-1500:]}", ExitCode.FAILURE)
        return json.loads(result.stdout)

    def delete(self, kind: str, name: str, timeout: float) -> None:
        self.run("delete", f"{kind}/{name}", "--ignore-not-found", "--wait", f"--timeout={int(timeout)}s",
                 timeout=timeout + 30)

    def scale(self, kind: str, name: str, replicas: int) -> None:
        self.run("scale", f"{kind}/{name}", f"--replicas={replicas}")

    def logs(self, target: str, tail: int = 30) -> list[str]:
        result = self.run("logs", target, f"--tail={tail}", "--all-containers", check=False)
        return (result.stdout or result.stderr).splitlines()[-tail:]

    def rollout(self, deployment: str, timeout: float, progress) -> None:
        self.run("rollout", "status", f"deployment/{deployment}", f"--timeout={int(timeout)}s",
                 timeout=timeout + 30, stream=progress)
