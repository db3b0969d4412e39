"""kubectl against a pretend OKE cluster kept in a JSON file (FAKE_KUBE_STATE), for orm-pack's tests.

It answers the calls `orm-pack oke` makes and keeps the rules of the real API server and of OKE's cloud
controller that the deployment depends on:
- every call authenticates with the kubeconfig the Container Engine API wrote for THIS cluster;
- a namespaced object needs its namespace (NotFound otherwise), so the namespace must come first;
- a Job's pod template is immutable (spec.template: field is immutable), so a changed Job is replaced;
- a pod whose envFrom ConfigMap does not exist does not start (CreateContainerConfigError): the Job
  never completes and a rollout times out;
- a pod whose envFrom or volume Secret does not exist does not start either, unless it is `optional`;
- `create` refuses an object that exists (AlreadyExists), where `apply` would change it;
- on a basic cluster created without load-balancer subnets, a LoadBalancer Service gets an address only
  with the service.beta.kubernetes.io/oci-load-balancer-subnet1 annotation (OKE: "Summary of
  Annotations for Load Balancers").
The migrate Job does what its entrypoint and init_db.py do with what its pod gets (ConfigMaps, env, a
Secret's file named by MYSQL_ADMIN_PASSWORD_FILE): with MYSQL_ADMIN_USER and the password it creates
the database (the password must be the DB system's), without them it needs a database made before; a
*_SECRET_OCID for the administrator fails, as the nodes may not read that secret (stack/iam.tf).
Behaviours: FAKE_KUBE_MIGRATE_FAILS=1 makes the migrate Job fail. `kustomize` runs the real kubectl.

With a kubelet (okefake/kubelet.py, a cluster installed with `kubelet=True`) pods really run: an applied
Job stays active until the kubelet has run it and written its end and its log; a Deployment's change (apply,
`scale`) bumps metadata.generation, and `rollout status` waits until the kubelet reports that generation
ready (or failed), as the API server's status does. The state file is shared with the kubelet under a lock.
"""
import base64
import fcntl
import json
import os
import re
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import yaml

NAMESPACED = {"ServiceAccount", "ConfigMap", "NetworkPolicy", "Job", "CronJob", "Deployment", "Service",
              "PodDisruptionBudget", "HorizontalPodAutoscaler", "Secret"}
KINDS = {"namespace": "Namespace", "job": "Job", "service": "Service", "deployment": "Deployment",
         "configmap": "ConfigMap", "secret": "Secret"}
PLURAL = {"Job": "jobs.batch", "Service": "services", "Deployment": "deployments.apps", "Namespace": "namespaces",
          "ConfigMap": "configmaps", "Secret": "secrets"}
SUBNET = re.compile(r"^ocid1\.subnet\.")


def fail(message: str, code: int = 1):
    print(message, file=sys.stderr)
    raise SystemExit(code)


@contextmanager
def locked(path: Path):
    """The cluster's state, read and written back under a lock the kubelet takes too."""
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cluster = Cluster(path)
        yield cluster
        cluster.save()


class Cluster:
    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text())

    def save(self):
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=1))
        temporary.replace(self.path)

    @property
    def has_kubelet(self) -> bool:
        return bool(self.data.get("kubelet"))

    @property
    def objects(self) -> dict:
        return self.data["objects"]

    def key(self, kind: str, namespace: str, name: str) -> str:
        return f"{kind}/{'' if kind == 'Namespace' else namespace}/{name}"

    def find(self, kind: str, namespace: str, name: str):
        return self.objects.get(self.key(kind, namespace, name))

    def config_maps_missing(self, pod_spec: dict, namespace: str) -> list[str]:
        names = [source["configMapRef"]["name"]
                 for container in pod_spec.get("initContainers", []) + pod_spec.get("containers", [])
                 for source in container.get("envFrom", []) if "configMapRef" in source]
        return [name for name in names if not self.find("ConfigMap", namespace, name)]

    def secrets_missing(self, pod_spec: dict, namespace: str) -> list[str]:
        references = [source["secretRef"] for container in pod_spec.get("containers", [])
                      for source in container.get("envFrom", []) if "secretRef" in source]
        references += [{"name": volume["secret"]["secretName"], "optional": volume["secret"].get("optional")}
                       for volume in pod_spec.get("volumes", []) if "secret" in volume]
        return [ref["name"] for ref in references
                if not ref.get("optional") and not self.find("Secret", namespace, ref["name"])]

    def secret_values(self, namespace: str, name: str) -> dict:
        secret = self.find("Secret", namespace, name) or {}
        return {**{k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()},
                **secret.get("stringData", {})}

    def pod_env(self, pod_spec: dict, namespace: str) -> dict:
        """What a pod's container sees: its ConfigMaps, Secrets and env, and a *_FILE setting that names a
        file of a mounted Secret read into the setting (as the tracking entrypoint reads it)."""
        env, files = {}, {}
        secret_volumes = {volume["name"]: volume["secret"]["secretName"]
                          for volume in pod_spec.get("volumes", []) if "secret" in volume}
        for container in pod_spec.get("containers", []):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    env.update((self.find("ConfigMap", namespace, source["configMapRef"]["name"]) or {}).get("data", {}))
                elif "secretRef" in source:
                    env.update(self.secret_values(namespace, source["secretRef"]["name"]))
            env.update({item["name"]: item["value"] for item in container.get("env", []) if "value" in item})
            for mount in container.get("volumeMounts", []):
                if mount["name"] in secret_volumes:
                    for key, value in self.secret_values(namespace, secret_volumes[mount["name"]]).items():
                        files[f"{mount['mountPath']}/{key}"] = value
        for name in [n for n in env if n.endswith("_FILE")]:
            path = env.pop(name)
            if path in files:
                env[name.removesuffix("_FILE")] = files[path]
        return env


def authenticate(cluster: Cluster, kubeconfig: str | None):
    if not kubeconfig or not Path(kubeconfig).is_file():
        fail("error: no kubeconfig: the connection to the server localhost:8080 was refused")
    document = yaml.safe_load(Path(kubeconfig).read_text())
    args = [arg for user in document.get("users", []) for arg in user["user"].get("exec", {}).get("args", [])]
    if cluster.data["cluster_id"] not in args:
        fail("error: You must be logged in to the server (Unauthorized)")


def apply(cluster: Cluster, namespace: str, text: str, create: bool = False):
    for document in [doc for doc in yaml.safe_load_all(text) if doc]:
        kind, name = document.get("kind"), document.get("metadata", {}).get("name")
        if not kind or not name or not document.get("apiVersion"):
            fail('error: error validating "STDIN": apiVersion, kind and metadata.name are required')
        object_namespace = document["metadata"].get("namespace", namespace)
        if kind in NAMESPACED and not cluster.find("Namespace", "", object_namespace):
            fail(f'Error from server (NotFound): error when creating "STDIN": namespaces "{object_namespace}" '
                 "not found")
        existing = cluster.find(kind, object_namespace, name)
        if create and existing:
            fail(f'Error from server (AlreadyExists): error when creating "STDIN": {PLURAL.get(kind, kind.lower())} '
                 f'"{name}" already exists')
        if kind == "Job" and existing and existing["spec"]["template"] != document["spec"]["template"]:
            fail(f'The Job "{name}" is invalid: spec.template: Invalid value: field is immutable')
        document.setdefault("status", {})
        if kind == "Job":
            document["metadata"]["uid"] = (existing or {}).get("metadata", {}).get("uid") or str(uuid.uuid4())
            document["status"] = {"active": 1} if cluster.has_kubelet else job_status(cluster, document,
                                                                                       object_namespace)
        if kind == "Deployment":
            generation = (existing or {}).get("metadata", {}).get("generation", 0)
            changed = not existing or existing["spec"] != document["spec"]
            document["metadata"]["generation"] = generation + 1 if changed else generation
            document["status"] = existing["status"] if existing and not changed else {}
        if kind == "Service" and document["spec"].get("type") == "LoadBalancer":
            subnet = document["metadata"].get("annotations", {}).get(
                "service.beta.kubernetes.io/oci-load-balancer-subnet1", "")
            # OCI's cloud controller gives the load balancer the reserved address the Service names, else one of its own.
            address = document["spec"].get("loadBalancerIP") or "203.0.113.80"
            document["status"] = {"loadBalancer": {"ingress": [{"ip": address}]} if SUBNET.match(subnet) else {}}
        cluster.objects[cluster.key(kind, object_namespace, name)] = document
        print(f"{kind.lower()}/{name} {'configured' if existing else 'created'}")


FAILED = {"failed": 4, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}


def job_status(cluster: Cluster, job: dict, namespace: str) -> dict:
    pod_spec = job["spec"]["template"]["spec"]
    if cluster.config_maps_missing(pod_spec, namespace) or cluster.secrets_missing(pod_spec, namespace):
        return {"active": 1}
    if os.environ.get("FAKE_KUBE_MIGRATE_FAILS") == "1":
        cluster.data["job_log"] = ["tracking-entrypoint: waiting up to 300s for database 10.0.1.20:3306",
                                   "init_db: ERROR: cannot connect to 10.0.1.20:3306 as the administrator"]
        return FAILED
    env, mysql = cluster.pod_env(pod_spec, namespace), cluster.data["mysql"]
    if env.get("MYSQL_ADMIN_PASSWORD_SECRET_OCID"):
        cluster.data["job_log"] = [f"tracking-entrypoint: ERROR: cannot read secret {env['MYSQL_ADMIN_PASSWORD_SECRET_OCID']}"
                                   " (404 NotAuthorizedOrNotFound)"]
        return FAILED
    if env.get("MYSQL_ADMIN_USER") and env.get("MYSQL_ADMIN_PASSWORD"):
        if env["MYSQL_ADMIN_PASSWORD"] != mysql["admin_password"]:
            cluster.data["job_log"] = [f"init_db: ERROR: the database refused MYSQL_ADMIN_USER "
                                       f"{env['MYSQL_ADMIN_USER']!r}: check the administrator user name and password"]
            return FAILED
        mysql["database_ready"] = True
    elif not mysql["database_ready"]:
        cluster.data["job_log"] = ["tracking-entrypoint: MYSQL_ADMIN_USER/MYSQL_ADMIN_PASSWORD not set: database "
                                   "mlflow and its user must exist",
                                   "(1049, \"Unknown database 'mlflow'\")"]
        return FAILED
    cluster.data["job_log"] = ["init_db: schema migrations done"]
    return {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}


def rollout_status(path: Path, namespace: str, name: str, timeout: float) -> None:
    """Without a kubelet a rollout is done at once; with one, when the kubelet has made the Deployment's
    generation ready."""
    deadline = time.monotonic() + timeout
    said = False
    while True:
        with locked(path) as cluster:
            deployment = cluster.find("Deployment", namespace, name)
            if not deployment:
                not_found("Deployment", name)
            replicas = deployment["spec"].get("replicas", 1)
            if not said:
                print(f'Waiting for deployment "{name}" rollout to finish: 0 of {replicas} updated replicas are '
                      "available...", flush=True)
                said = True
            if cluster.config_maps_missing(deployment["spec"]["template"]["spec"], namespace):
                fail("error: timed out waiting for the condition")
            status = deployment.get("status", {})
            if not cluster.has_kubelet or status.get("observedGeneration") == deployment["metadata"].get("generation"):
                if status.get("failed"):
                    fail(f'error: deployment "{name}" exceeded its progress deadline: {status["failed"]}')
                print(f'deployment "{name}" successfully rolled out')
                return
        if time.monotonic() > deadline:
            fail("error: timed out waiting for the condition")
        time.sleep(0.2)


def scale(cluster: Cluster, namespace: str, kind: str, name: str, replicas: str) -> None:
    found = cluster.find(kind, namespace, name)
    if not found:
        not_found(kind, name)
    if not re.fullmatch(r"[0-9]+", replicas):
        fail(f'error: invalid --replicas "{replicas}"')
    if found["spec"].get("replicas") != int(replicas):
        found["spec"]["replicas"] = int(replicas)
        found["metadata"]["generation"] = found["metadata"].get("generation", 0) + 1
    print(f"{kind.lower()}.apps/{name} scaled")


def target(argument: str) -> tuple[str, str]:
    kind, _, name = argument.partition("/")
    if kind not in KINDS or not name:
        fail(f'error: the server doesn\'t have a resource type "{kind}"')
    return KINDS[kind], name


def not_found(kind: str, name: str):
    fail(f'Error from server (NotFound): {PLURAL.get(kind, kind.lower())} "{name}" not found')


def main(argv: list[str]) -> int:
    if argv and argv[0] == "kustomize":
        os.execv(os.environ["FAKE_KUBE_REAL_KUBECTL"], ["kubectl", *argv])
    path = Path(os.environ["FAKE_KUBE_STATE"])
    options, words, index = {}, [], 0
    while index < len(argv):
        if argv[index] in ("--kubeconfig", "--namespace", "--filename", "--output"):
            options[argv[index]] = argv[index + 1]
            index += 2
        else:
            words.append(argv[index])
            index += 1
    with locked(path) as cluster:
        cluster.data["calls"].append(words)
    namespace = options.get("--namespace", "default")
    verb = words[0] if words else ""
    stdin = sys.stdin.read() if verb in ("apply", "create") and options.get("--filename") == "-" else None
    if verb == "rollout" and words[1:2] == ["status"]:
        with locked(path) as cluster:
            authenticate(cluster, options.get("--kubeconfig"))
        kind, name = target(words[2])
        timeouts = [w.split("=", 1)[1].rstrip("s") for w in words if w.startswith("--timeout=")]
        rollout_status(path, namespace, name, float(timeouts[0]) if timeouts else 300)
        return 0
    with locked(path) as cluster:
        authenticate(cluster, options.get("--kubeconfig"))
        answer(cluster, namespace, verb, words, stdin)
    return 0


def answer(cluster: Cluster, namespace: str, verb: str, words: list[str], stdin: str | None) -> None:
    if stdin is not None:
        apply(cluster, namespace, stdin, create=verb == "create")
    elif verb == "get":
        kind, name = target(words[1])
        found = cluster.find(kind, namespace, name)
        if not found:
            not_found(kind, name)
        print(json.dumps(found))
    elif verb == "delete":
        kind, name = target(words[1])
        if kind == "Namespace":
            for key in [k for k in cluster.objects if k.split("/")[1] == name or k == f"Namespace//{name}"]:
                del cluster.objects[key]
        elif not cluster.objects.pop(cluster.key(kind, namespace, name), None) and "--ignore-not-found" not in words:
            not_found(kind, name)
        print(f'{kind.lower()} "{name}" deleted')
    elif verb == "logs":
        kind, name = target(words[1])
        if not cluster.find(kind, namespace, name):
            not_found(kind, name)
        for line in cluster.data.get("logs", {}).get(f"{kind}/{name}", cluster.data.get("job_log", [])):
            print(line)
    elif verb == "scale":
        kind, name = target(words[1])
        replicas = [w.split("=", 1)[1] for w in words if w.startswith("--replicas=")]
        if not replicas:
            fail("error: required flag(s) \"replicas\" not set")
        scale(cluster, namespace, kind, name, replicas[0])
    else:
        fail(f"fake kubectl: no answer for {words}", 2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
