"""The steps of `orm-pack oke deploy` and `orm-pack oke delete`, in order, on a Kubectl.

deploy: the prepared objects (namespace, accounts, settings, network policies) -> the MySQL
administrator's password as a Secret for the migrate Job alone -> the migrate Job, run to completion (a
failed one stops everything before a pod of the new version starts) -> the Secret deleted, whatever the
Job's end -> everything else -> the rollouts (tracking, proxy, metrics) -> the load balancer's address.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from orm_pack.errors import ExitCode, UserError
from orm_pack.oke.kubectl import Kubectl

MIGRATE_JOB = "mlflow-migrate"
ADMIN_SECRET = "mlflow-migrate-admin"  # oke/base/migrate-job.yaml reads it (optional: a hand-made run has none)
DEPLOYMENTS = ("mlflow-tracking", "mlflow-proxy", "mlflow-metrics")
SERVICE = "mlflow"
PREPARED_KINDS = ("Namespace", "ServiceAccount", "ConfigMap", "NetworkPolicy")


@dataclass(frozen=True)
class Deployed:
    url: str
    address: str


def split(documents: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """(prepared objects, the migrate Job, the rest) in the order they are applied."""
    prepared = [d for d in documents if d["kind"] in PREPARED_KINDS]
    job = [d for d in documents if d["kind"] == "Job"]
    rest = [d for d in documents if d["kind"] not in PREPARED_KINDS and d["kind"] != "Job"]
    if [d["metadata"]["name"] for d in job] != [MIGRATE_JOB]:
        raise UserError(f"the manifests must hold exactly one Job, {MIGRATE_JOB}", ExitCode.FAILURE)
    return prepared, job, rest


def _job_state(job: dict | None) -> str:
    for condition in (job or {}).get("status", {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return condition["type"]
    return "Running"


def admin_secret(password: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": ADMIN_SECRET, "labels": {"app.kubernetes.io/component": "migrate"}},
            "stringData": {"password": password}}


def run_migrations(kube: Kubectl, job: list[dict], timeout: float, say: Callable[[str], None],
                   admin_password: str, poll: float = 5.0) -> None:
    """The migrate Job, run to completion; a failure raises with the Job's log."""
    say(f"job/{MIGRATE_JOB}: preparing the database (first-boot SQL, schema migrations)")
    state, log = run_with_admin(kube, job[0], timeout, admin_password, poll)
    say(f"secret/{ADMIN_SECRET}: deleted (the administrator's password was the Job's alone)")
    if state == "Complete":
        say(f"job/{MIGRATE_JOB}: complete")
        return
    tail = "\n  ".join(log)
    what = "failed" if state == "Failed" else f"did not finish in {int(timeout)} s"
    raise UserError(f"job/{MIGRATE_JOB} {what}; the tracking servers were not rolled out. Its log:\n  {tail}",
                    ExitCode.FAILURE)


def run_with_admin(kube: Kubectl, job: dict, timeout: float, admin_password: str,
                   poll: float = 5.0) -> tuple[str, list[str]]:
    """A Job that needs the MySQL administrator (the migrate Job, or the upgrade's plan Job built from it), with
    the password in a Secret that lives only while the Job runs: (Complete, Failed or Running when the time ran
    out; the end of its log). `kubectl create`, not apply: apply would copy the password into an annotation."""
    name = job["metadata"]["name"]
    # A Job's pod template cannot change: the previous run goes first (it is safe to run again).
    kube.delete("job", name, timeout=120)
    kube.delete("secret", ADMIN_SECRET, timeout=120)
    kube.create([admin_secret(admin_password)])
    try:
        kube.apply([job])
        deadline = time.monotonic() + timeout
        while (state := _job_state(kube.get("job", name))) == "Running" and time.monotonic() <= deadline:
            time.sleep(poll)
        return state, kube.logs(f"job/{name}")
    finally:
        kube.delete("secret", ADMIN_SECRET, timeout=120)


def wait_address(kube: Kubectl, timeout: float, poll: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() <= deadline:
        service = kube.get("service", SERVICE) or {}
        for ingress in service.get("status", {}).get("loadBalancer", {}).get("ingress") or []:
            if ingress.get("ip") or ingress.get("hostname"):
                return ingress.get("ip") or ingress["hostname"]
        time.sleep(poll)
    raise UserError(f"service/{SERVICE} has no load balancer address after {int(timeout)} s: `kubectl describe "
                    f"service {SERVICE} -n {kube.namespace}` shows why (the subnet, the network security group or "
                    "the tenancy's load balancer limit)", ExitCode.FAILURE)


def deploy(kube: Kubectl, documents: list[dict], timeout: float, say: Callable[[str], None],
           admin_password: str, poll: float = 5.0) -> Deployed:
    prepared, job, rest = split(documents)
    say(f"applying {len(prepared)} objects: namespace, service accounts, settings, network policies")
    kube.apply(prepared)
    run_migrations(kube, job, timeout, say, admin_password, poll)
    say(f"applying {len(rest)} objects: tracking, proxy and metrics deployments, services, budgets, autoscaler, "
        "housekeeping")
    kube.apply(rest)
    for name in DEPLOYMENTS:
        kube.rollout(name, timeout, progress=say)
    say(f"service/{SERVICE}: waiting for the load balancer's address")
    address = wait_address(kube, timeout, poll)
    return Deployed(f"https://{address}/", address)


def delete(kube: Kubectl, timeout: float, say: Callable[[str], None]) -> None:
    # The load balancer goes first and on its own: the cloud deletes it with the Service, and a
    # load balancer left in the stack's subnet would stop `orm-pack destroy` from deleting the subnet.
    say(f"deleting service/{SERVICE} and its load balancer")
    kube.delete("service", SERVICE, timeout)
    say(f"deleting namespace/{kube.namespace} and everything in it")
    kube.delete("namespace", kube.namespace, timeout)
