"""How deploy results look: rich tables and panels for people, JSON documents for scripts, both from
the same result objects (deploy/workflows.py). Nothing here talks to the cloud."""
from __future__ import annotations

import json

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from orm_pack.cloud.resource_manager import StackOutput
from orm_pack.deploy import cost as cost_module
from orm_pack.deploy.cost import CostEstimate
from orm_pack.deploy.plan_review import PlanSummary, data_held_by
from orm_pack.deploy.workflows import (
    ApplyResult,
    DestroyResult,
    Interrupted,
    JobFailed,
    LogsResult,
    OutputsResult,
    PlanResult,
    StatusResult,
)

ACTION_LABELS = {"create": "create", "update": "update in place", "replace": "REPLACE", "delete": "DESTROY"}


# ------------------------------------------------------------------ plan
def plan_table(summary: PlanSummary) -> Table:
    table = Table(title="Plan", title_justify="left")
    for column in ("action", "resource", "why"):
        table.add_column(column, overflow="fold")
    for change in summary.changes:
        why = f"forced by {', '.join(change.forced_by)}" if change.forced_by else ""
        table.add_row(ACTION_LABELS[change.action], change.address, why)
    return table


def data_warnings(summary: PlanSummary) -> list[str]:
    return [f"WARNING: {c.address} will be {'replaced' if c.action == 'replace' else 'destroyed'}: "
            f"{c.data_loss} would be lost" for c in summary.data_at_risk]


def cost_table(estimate: CostEstimate) -> Table:
    table = Table(title=f"Estimated monthly cost ({estimate.currency}, list prices checked {estimate.checked})",
                  title_justify="left")
    for column, justify in (("resource", "left"), ("what", "left"), ("a month", "right"), ("note", "left")):
        table.add_column(column, justify=justify, overflow="fold")
    for line in estimate.lines:
        table.add_row(line.address, line.item, f"{line.monthly:.2f}", line.note)
    return table


def cost_line(estimate: CostEstimate) -> str:
    text = (f"Estimated cost: {estimate.total:.2f} {estimate.currency} a month at list prices "
            f"(checked {estimate.checked}); {cost_module.usage_note(estimate)}.")
    if estimate.not_priced:
        text += f" Not priced: {', '.join(estimate.not_priced)}."
    return text


def print_plan(console: Console, planned: PlanResult) -> None:
    summary = planned.summary
    if summary.no_changes:
        console.print("No changes: the infrastructure matches the configuration.")
        return
    if summary.changes:
        console.print(plan_table(summary))
    line = f"Plan: {summary.add} to add, {summary.change} to change, {summary.destroy} to destroy."
    if summary.output_changes:
        line += f" Outputs changing: {', '.join(summary.output_changes)}."
    console.print(line, markup=False)
    for warning in data_warnings(summary):
        console.print(warning, markup=False, style="bold red")
    if planned.cost.lines:
        console.print(cost_table(planned.cost))
    console.print(cost_line(planned.cost), markup=False)


def plan_document(planned: PlanResult) -> dict:
    summary, estimate = planned.summary, planned.cost
    return {
        "add": summary.add, "change": summary.change, "destroy": summary.destroy, "no_changes": summary.no_changes,
        "changes": [{"address": c.address, "type": c.type, "action": c.action, "forced_by": list(c.forced_by)}
                    for c in summary.changes],
        "data_at_risk": [{"address": c.address, "action": c.action, "what": c.data_loss}
                         for c in summary.data_at_risk],
        "output_changes": list(summary.output_changes),
        "cost": cost_document(estimate),
    }


def cost_document(estimate: CostEstimate) -> dict:
    return {"currency": estimate.currency, "prices_checked": estimate.checked, "monthly_total": estimate.total,
            "lines": [{"address": line.address, "item": line.item, "list_monthly": line.list_monthly,
                       "monthly": line.monthly, "note": line.note} for line in estimate.lines],
            "beyond_free_tier": list(estimate.beyond_free_tier), "usage_based": list(estimate.usage_based),
            "not_priced": list(estimate.not_priced)}


# ------------------------------------------------------------------ destroy
def destroy_warnings(resources: list[str]) -> list[str]:
    return [f"WARNING: destroying {address} loses {data_held_by(address)}" for address in resources
            if data_held_by(address)]


def destroy_document(result: DestroyResult) -> dict:
    contents = result.artifacts
    return {"stack_id": result.stack.id, "destroy_job_id": result.job.id if result.job else None,
            "destroyed": result.destroyed, "stack_deleted": result.stack_deleted,
            "artifacts": None if contents is None else {
                "bucket": contents.bucket, "namespace": contents.namespace, "objects": contents.objects,
                "versions": contents.versions, "bytes": contents.bytes},
            "artifact_versions_deleted": result.artifacts_deleted,
            "dashboard": None if result.dashboard is None else {
                "id": result.dashboard.dashboard_id, "saved_searches": list(result.dashboard.saved_search_ids),
                "deleted": result.dashboard_deleted}}


# ------------------------------------------------------------------ outputs
def outputs_map(outputs: list[StackOutput]) -> dict:
    return {o.name: o.value for o in outputs}


def print_outputs(console: Console, outputs: list[StackOutput]) -> None:
    by_name = {o.name: o for o in outputs}
    if "mlflow_url" in by_name:
        console.print(f"\nMLflow: {by_name['mlflow_url'].value}", markup=False, style="bold")
    table = Table(title="Outputs", title_justify="left")
    table.add_column("name")
    table.add_column("value", overflow="fold")
    commands = []
    for output in outputs:
        if output.name.startswith("commands_"):
            commands.append(output)
            continue
        value = "(sensitive)" if output.sensitive else output.value
        table.add_row(output.name, value if isinstance(value, str) else json.dumps(value))
    if table.row_count:
        console.print(table)
    for output in commands:
        if output.value:
            vm = output.name.split("_", 1)[1]
            console.print(Panel(str(output.value).rstrip("\n"), title=f"commands.txt on the {vm} VM",
                                title_align="left", expand=False), markup=False, highlight=False)


def apply_document(result: ApplyResult) -> dict:
    planned = result.plan
    return {"stack_id": planned.stack.stack.id, "stack_action": planned.stack.action,
            "plan_job_id": planned.job.id, "apply_job_id": result.job.id if result.job else None,
            "changed": not planned.summary.no_changes, "plan": plan_document(planned),
            "outputs": outputs_map(result.outputs)}


def outputs_document(result: OutputsResult) -> dict:
    return {"job_id": result.job.id, "stack_id": result.job.stack_id, "outputs": outputs_map(result.outputs),
            "sensitive": [o.name for o in result.outputs if o.sensitive]}


# ------------------------------------------------------------------ logs, status
def logs_document(result: LogsResult) -> dict:
    return {"job_id": result.job.id, "state": result.job.state,
            "logs": [{"timestamp": line.timestamp, "level": line.level, "message": line.message}
                     for line in result.lines]}


def print_status(console: Console, result: StatusResult) -> None:
    stack = result.stack
    console.print(f"Stack {stack.name} {stack.id}: {stack.state} (Terraform {stack.terraform_version})", markup=False)
    table = Table(title="Recent jobs", title_justify="left")
    for column in ("created", "operation", "state", "job"):
        table.add_column(column, overflow="fold")
    for job in result.jobs:
        created = job.time_created.strftime("%Y-%m-%d %H:%M:%S") if job.time_created else ""
        table.add_row(created, job.operation, job.state, job.id)
    console.print(table)


def print_health(console: Console, found) -> None:
    """`orm-pack status --health`: the latest minute of each metric stream, then what is wrong (or that nothing is)."""
    table = Table(title=f"Deployment {found.deployment} in OCI Monitoring (latest minute of the last {found.minutes})",
                  title_justify="left")
    for column in ("role", "metric", "of", "value", "minute (UTC)"):
        table.add_column(column, overflow="fold")
    for reading in sorted(found.readings, key=lambda r: (r.role, r.metric, r.detail)):
        table.add_row(reading.role, reading.metric.removeprefix("mlflow."), reading.detail, f"{reading.value:g}",
                      reading.at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)
    if found.healthy:
        console.print("Healthy: the tracking server answers, no alarm's threshold is crossed.", markup=False)
    for problem in found.problems:
        console.print(f"PROBLEM: {problem}", markup=False, style="bold red")


def status_document(result: StatusResult) -> dict:
    stack = result.stack
    return {"stack": {"id": stack.id, "name": stack.name, "state": stack.state, "compartment_id": stack.compartment_id,
                      "terraform_version": stack.terraform_version, "zip_sha256": stack.zip_sha256,
                      "time_created": stack.time_created},
            "jobs": [{"id": j.id, "operation": j.operation, "state": j.state, "time_created": j.time_created,
                      "time_finished": j.time_finished, "failure": j.failure} for j in result.jobs]}


# ------------------------------------------------------------------ what went wrong
def print_job_failure(console: Console, failure: JobFailed) -> None:
    job = failure.job
    console.print(f"\n{job.operation} job {job.id} {job.state}" + (f": {job.failure}" if job.failure else ""),
                  markup=False)
    console.print(f"Last {len(failure.tail)} log lines:", markup=False)
    for line in failure.tail:
        console.print("  " + line, markup=False, highlight=False)


def print_interrupted(console: Console, interrupted: Interrupted, flags: str) -> None:
    job_id, operation = interrupted.job_id, interrupted.operation
    console.print(f"\nInterrupted. {operation} job {job_id} keeps running in Resource Manager.", markup=False)
    console.print(f"Follow it:  orm-pack logs {job_id} --follow{' ' + flags if flags else ''}", markup=False)
    console.print(f"Cancel it:  oci resource-manager job cancel --job-id {job_id}", markup=False)


def to_json(document) -> str:
    return json.dumps(document, indent=2, default=str)
