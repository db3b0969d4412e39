"""`orm-pack upgrade --status`: what the stack's tracking VM says of itself (`mlflow-upgrade status` through Run
Command), and the upgrade it refused at boot, if any.

A console user who changes the MLflow version in the form and applies gets a new tracking VM; when the database's
pre-checks refuse the migration, that VM runs the version that last served the database and writes why to
/var/lib/mlflow/upgrade-refused, which `mlflow-upgrade status` prints last as `refused: <why>` (`refused: none`
otherwise). `orm-pack doctor --mlflow-version` sees the other version and points here.
"""
from __future__ import annotations

from dataclasses import dataclass

from orm_pack.cloud.resource_manager import ResourceManager
from orm_pack.cloud.run_command import RunCommand
from orm_pack.deploy import upgrade, workflows
from orm_pack.errors import ExitCode, UserError

REFUSED = "refused: "


@dataclass(frozen=True)
class VmStatus:
    instance_id: str
    mlflow_version: str     # the version the stack sets (its output mlflow_version)
    output: str             # what `mlflow-upgrade status` printed (Run Command keeps its end)
    exit_code: int | None
    refused: str | None     # why the VM refused the last upgrade at boot; None: it did not


def refusal(status_output: str) -> str | None:
    """The `refused: ` line's reason, but `refused: none`; None without one."""
    for line in reversed(status_output.splitlines()):
        if line.startswith(REFUSED):
            reason = line.removeprefix(REFUSED).strip()
            return None if reason == "none" else reason
    return None


def vm_status(rm: ResourceManager, run_command: RunCommand, compartment: str, stack_name: str) -> VmStatus:
    outputs = {output.name: output.value for output in workflows.outputs(rm, compartment, stack_name, None).outputs}
    if "tracking_instance_id" not in outputs:
        raise UserError(f"stack {stack_name} was applied by an earlier release, whose outputs do not name the tracking "
                        "VM: apply this release first (orm-pack apply)", ExitCode.USAGE)
    instance_id = outputs["tracking_instance_id"] or ""
    if not instance_id:
        raise UserError(f"stack {stack_name} runs MLflow on OKE, without a tracking VM: its migrations run as a Job, "
                        "whose log says whether they were refused: `kubectl -n mlflow logs job/mlflow-migrate`",
                        ExitCode.USAGE)
    result = run_command.run(compartment, instance_id, f"sudo {upgrade.UPGRADE_SCRIPT} status",
                             upgrade.STATUS_TIMEOUT_SECONDS, display_name="mlflow-upgrade status")
    return VmStatus(instance_id, outputs.get("mlflow_version") or "unknown", result.output, result.exit_code,
                    refusal(result.output))
