"""What `orm-pack upgrade` shows: the plan (MLflow from -> to, the migrations, what the stack replaces, the
database's problems with their fixes) and the outcome (each step's time, the backups, a rollback)."""
from __future__ import annotations

from dataclasses import asdict

from rich.console import Console

from orm_pack.commands import views
from orm_pack.deploy.upgrade import UpgradeResult
from orm_pack.deploy.workflows import PlanResult


def _say(console: Console, text: str, style: str | None = None) -> None:
    console.print(text, markup=False, highlight=False, style=style)


def print_upgrade_plan(console: Console, result: UpgradeResult, planned: PlanResult | None) -> None:
    plan = result.database_plan
    _say(console, f"\nMLflow {result.from_version} -> {result.to_version}: database `{plan.get('database')}` at "
                  f"revision {plan.get('from_revision')} (MLflow {plan.get('from_mlflow')}) -> {plan.get('to_revision')}")
    steps = plan.get("steps") or []
    if not steps:
        _say(console, "  no migration pending")
    for step in steps:
        marks = [mark for mark in ("slow", "breaking") if step.get(mark)]
        tables = ", ".join(step.get("tables") or [])
        _say(console, f"  {step['revision']} {step.get('title', '')} [{', '.join(marks) or 'quick'}]"
                      + (f" on {tables}" if tables else ""), "bold red" if marks else None)
    if any(step.get("breaking") for step in steps):
        _say(console, f"  breaking: MLflow {result.from_version} may not run on the migrated schema; going back restores the backup "
                      "taken first")
    if plan.get("shortened"):
        _say(console, "  (shortened: the tracking VM's log has the whole plan: `sudo mlflow-upgrade plan "
                      f"{result.to_version}` there)")
    for problem in plan.get("problems") or []:
        _say(console, f"REFUSED: {problem['what']}", "bold red")
        for line in (problem.get("fix") or "").splitlines():
            _say(console, f"    {line}")
    if planned is not None:
        views.print_plan(console, planned)
    elif result.replaced:
        _say(console, "The stack's plan replaces: " + ", ".join(result.replaced))


def print_upgrade_result(console: Console, result: UpgradeResult) -> None:
    _say(console, "")
    for step in result.steps:
        _say(console, f"  {step.seconds:7.1f}s  {step.name}" + (f" ({step.detail})" if step.detail else ""))
    if result.backup:
        _say(console, f"Backup before the upgrade: {result.backup.id} ({result.backup.display_name})")
    if result.upgraded:
        _say(console, f"MLflow {result.from_version} -> {result.to_version}: upgraded, the health gate passed")
        return
    if result.failure:
        _say(console, f"The upgrade failed: {result.failure}", "bold red")
    if result.failed_state_backup:
        _say(console, f"The failed database is kept in backup {result.failed_state_backup.id} "
                      f"({result.failed_state_backup.display_name}): restore it into a new DB system to look at it")
    if result.restored_db_system_id:
        _say(console, f"Restored from {result.backup.id} into DB system {result.restored_db_system_id}, which the "
                      "stack now manages")
    if result.rolled_back:
        _say(console, f"Rolled back: MLflow {result.from_version} serves the data as it was before the upgrade")


def upgrade_document(result: UpgradeResult) -> dict:
    return asdict(result)
