"""`orm-pack upgrade` on a stack whose MLflow runs on its OKE cluster: the database's part runs as Jobs of the
cluster (its pods reach MySQL; the laptop does not).

- plan: the migrate Job's pod, as Job mlflow-upgrade-plan, with the target version's image and `plan --json`
  (init_db.py's pre-checks and the rehearsal on an empty copy of the schema; nothing in the database changes).
  No retry: its exit 3 (refused) is an answer, read from its log with the rest of the plan.
- roll_out: with migrations pending, the running version's tracking pods are stopped first (scaled to 0: an
  old server must not write to a schema being migrated; the autoscaler leaves a Deployment at 0 alone), then
  `orm-pack oke deploy`'s steps with the version's image: the migrate Job once (init_db.py's lock, pre-checks
  and journal) before a pod of it starts, the rollouts. A failure raises with the Job's log.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

from orm_pack.errors import ExitCode, UserError
from orm_pack.oke import workflow
from orm_pack.oke.kubectl import Kubectl

PLAN_JOB = "mlflow-upgrade-plan"
TRACKING = "mlflow-tracking"


def plan_job(migrate_job: dict, image: str) -> dict:
    """The migrate Job's pod, run once in plan mode with `image`."""
    job = json.loads(json.dumps(migrate_job))
    job["metadata"]["name"] = PLAN_JOB
    job["metadata"].setdefault("labels", {})["app.kubernetes.io/component"] = "upgrade-plan"
    job["spec"]["backoffLimit"] = 0
    pod = job["spec"]["template"]["spec"]
    for container in pod.get("initContainers", []) + pod["containers"]:
        container["image"] = image
    pod["containers"][0]["args"] = ["plan", "--json"]
    return job


def last_json_line(lines: list[str]) -> dict | None:
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


@dataclass
class OkeRuntime:
    kube: Kubectl
    documents: Callable[[str | None], list[dict]]  # oke/ rendered from the stack's latest outputs, with this image
    admin_password: Callable[[], str]               # the MySQL administrator's, read from Vault with the user's key
    image_for: Callable[[str], str]                 # an MLflow version -> this release's image of it
    timeout: float
    say: Callable[[str], None]
    where: str = "in the OKE cluster"
    apply_label: str = "4. apply the stack, then migrate once (job/mlflow-migrate) and roll out"
    reporter: str = "The migrate Job's log"
    previous_image: str = field(init=False, default="")

    def __post_init__(self):
        deployment = self.kube.get("deployment", TRACKING)
        if deployment is None:
            raise UserError(f"deployment/{TRACKING} is not in the cluster: deploy MLflow first with `orm-pack oke "
                            "deploy`", ExitCode.NOT_FOUND)
        self.previous_image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]

    def plan(self, to_version: str) -> dict:
        image = self.image_for(to_version)
        prepared, (migrate,), _ = workflow.split(self.documents(image))
        self.kube.apply(prepared)  # new settings get new ConfigMap names: the running pods keep theirs
        self.say(f"job/{PLAN_JOB}: planning with {image}")
        state, log = workflow.run_with_admin(self.kube, plan_job(migrate, image), self.timeout,
                                             self.admin_password())
        plan = last_json_line(log)
        if plan is None:
            tail = "\n  ".join(log)
            raise UserError(f"job/{PLAN_JOB} could not plan the upgrade ({state}). Its log:\n  {tail}",
                            ExitCode.FAILURE)
        return plan

    def roll_out(self, version: str, migrations_pending: bool, image: str | None = None) -> None:
        if migrations_pending:
            self.say(f"deployment/{TRACKING}: stopping the running version's pods for the migration")
            self.kube.scale("deployment", TRACKING, 0)
            self.kube.rollout(TRACKING, self.timeout, progress=self.say)
        workflow.deploy(self.kube, self.documents(image), self.timeout, self.say, self.admin_password())
        self.say(f"MLflow {version} rolled out")

    def probe(self) -> str | None:
        return None  # roll_out has waited for the Job and the rollouts: the gate has only the server to ask

    def status(self) -> str:
        return "\n".join(self.kube.logs(f"job/{workflow.MIGRATE_JOB}", tail=40))
