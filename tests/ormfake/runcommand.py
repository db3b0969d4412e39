"""Run Command, the Compute Instance Agent API (`/20180530`, the SDK's ComputeInstanceAgentClient), beside the
Resource Manager fake, on the same loopback server and signature check: how `orm-pack upgrade` runs its
checks and the migration on the tracking VM, whose database the laptop cannot reach.

The subset: CreateInstanceAgentCommand, GetInstanceAgentCommand, GetInstanceAgentCommandExecution
(`/instanceAgentCommands/{id}/status?instanceId=`), CancelInstanceAgentCommand,
ListInstanceAgentCommandExecutions, with the API's JSON field names (oci.compute_instance_agent.models:
CreateInstanceAgentCommandDetails, InstanceAgentCommand, InstanceAgentCommandExecution,
InstanceAgentCommandExecutionOutputViaTextDetails), script and output as TEXT only.

Rules of the real service it keeps, from "Running Commands on an Instance" (OCI Compute documentation,
Limitations and Considerations) unless said otherwise:
- "The maximum size for a script file that you upload directly to an instance in plain text is 4 KB": a
  longer TEXT script is refused (400 InvalidParameter; the exact answer is not documented).
- "The output of a script when returned as plain text is limited to the last 1 KB": `content.text` is the
  last 1024 bytes of what the script printed; `textSha256` is the SHA-256 of that text ("SHA-256 checksum
  value of the text content", InstanceAgentCommandExecutionOutputViaTextDetails).
- "If you apply an optional timeout for a script, then the default is one hour. The maximum is 24 hours";
  zero means no timeout (CreateInstanceAgentCommandDetails). A script still running at its timeout ends
  TIMED_OUT.
- "Two scripts can run at a time by default": a third waits for one of them.
- "The exit codes that are returned are standard Linux error codes. An exit code of 0 indicates success":
  exit 0 is SUCCEEDED, anything else FAILED with its exitCode.
- "Canceling a script is a best-effort attempt. Commands can't be canceled after they have finished running
  or if they have expired": cancel of a finished command answers 409 IncorrectState.
- Delivery (InstanceAgentCommandExecution.deliveryState): VISIBLE until the instance's agent polls, ACKED once
  it took the command, EXPIRED when "The instance has not requested for commands and its delivery has
  expired". An instance whose agent does not poll (the Run Command plugin off, or no dynamic-group policy:
  the page's troubleshooting) leaves the command ACCEPTED and VISIBLE until it expires; the fake expires it
  after a stand-in delay.
- An instance the tenancy does not have answers 404 NotAuthorizedOrNotFound, as OCI answers any resource the
  caller cannot see (the exact behaviour of CreateInstanceAgentCommand here is not documented).

Registration: `add_instance(instance_id, runner)`; `runner(script_text, timeout_seconds) -> (exit_code,
output)` runs the script (a test's real runner runs `bash -c` in an environment of its choosing) and raises
TimeoutError (or subprocess.TimeoutExpired) when it stopped the script at its timeout; `runner=None` is an
instance whose agent never polls. The agent's delivery delay is scaled by `time_scale`; the script's timeout
is real time, since the script runs for real.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import threading
import time
from datetime import datetime, timezone

from harness import ocids
from harness.double.propagation import SCALE_ENV

API = "/20180530"
REGION = "us-phoenix-1"
SCRIPT_LIMIT = 4 * 1024
OUTPUT_LIMIT = 1024
DEFAULT_TIMEOUT = 3600
MAX_TIMEOUT = 24 * 3600
PARALLEL_SCRIPTS = 2
# Stand-ins for the agent's pace (seconds, before time_scale): it polls every few seconds; an undelivered
# command expires after a while (the service does not say how long).
SECONDS = {"delivery": 10.0, "expiry": 600.0}
FINAL_STATES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED")


class RunCommandError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def is_run_command(path: str) -> bool:
    return path.startswith(API + "/")


def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _not_found(what: str) -> RunCommandError:
    return RunCommandError(404, "NotAuthorizedOrNotFound", f"Authorization failed or requested resource not found: {what}")


def last_kilobyte(output: str) -> str:
    """What the service keeps of a script's output returned as text: its last 1 KB."""
    data = output.encode()
    if len(data) <= OUTPUT_LIMIT:
        return output
    return data[-OUTPUT_LIMIT:].decode(errors="ignore")


class RunCommand:
    """The instances and commands of one fake; `compartments`: the Resource Manager fake's set, shared."""

    def __init__(self, compartments: set, time_scale: float | None = None):
        self.compartments = compartments
        self.time_scale = float(os.environ.get(SCALE_ENV, "0.05")) if time_scale is None else time_scale
        self.lock = threading.RLock()
        self.runners: dict[str, object] = {}
        self.slots: dict[str, threading.Semaphore] = {}
        self.commands: dict[str, dict] = {}
        self.executions: dict[str, dict] = {}
        self.threads: list[threading.Thread] = []

    def add_instance(self, instance_id: str, runner) -> None:
        with self.lock:
            self.runners[instance_id] = runner
            self.slots[instance_id] = threading.Semaphore(PARALLEL_SCRIPTS)

    def wait(self, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        for thread in list(self.threads):
            thread.join(timeout=max(0.0, deadline - time.time()))

    # ------------------------------------------------------------- commands
    def create_command(self, body: dict) -> dict:
        compartment = body.get("compartmentId")
        if not compartment:
            raise RunCommandError(400, "MissingParameter", "compartmentId is required")
        if compartment not in self.compartments:
            raise _not_found(compartment)
        instance_id = (body.get("target") or {}).get("instanceId")
        if not instance_id:
            raise RunCommandError(400, "MissingParameter", "target.instanceId is required")
        content = body.get("content") or {}
        source, output = content.get("source") or {}, content.get("output") or {"outputType": "TEXT"}
        if source.get("sourceType") != "TEXT":
            raise RunCommandError(400, "InvalidParameter", f"content.source.sourceType {source.get('sourceType')}: "
                                                           "this fake takes TEXT scripts only")
        text = source.get("text") or ""
        if len(text.encode()) > SCRIPT_LIMIT:
            raise RunCommandError(400, "InvalidParameter", f"The script is {len(text.encode())} bytes: a script given "
                                                           "as plain text is limited to 4 KB")
        if output.get("outputType") != "TEXT":
            raise RunCommandError(400, "InvalidParameter", f"content.output.outputType {output.get('outputType')}: "
                                                           "this fake returns TEXT output only")
        timeout = body.get("executionTimeOutInSeconds")
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        if not isinstance(timeout, int) or not 0 <= timeout <= MAX_TIMEOUT:
            raise RunCommandError(400, "InvalidParameter", "executionTimeOutInSeconds must be between 0 and 86400")
        with self.lock:
            if instance_id not in self.runners:
                raise _not_found(f"instance {instance_id}")
            command_id = ocids.mint("instanceagentcommand", secrets.token_hex(8), REGION)
            now = _now()
            command = {
                "id": command_id, "compartmentId": compartment, "displayName": body.get("displayName"),
                "timeCreated": now, "timeUpdated": now, "isCanceled": False,
                "executionTimeOutInSeconds": timeout, "target": {"instanceId": instance_id},
                "content": {"source": {"sourceType": "TEXT", "text": text,
                                       "textSha256": source.get("textSha256")}, "output": {"outputType": "TEXT"}},
            }
            self.commands[command_id] = command
            self.executions[command_id] = {
                "instanceAgentCommandId": command_id, "instanceId": instance_id, "deliveryState": "VISIBLE",
                "lifecycleState": "ACCEPTED", "timeCreated": now, "timeUpdated": now,
                "sequenceNumber": secrets.randbelow(10 ** 12), "displayName": body.get("displayName"),
                "content": {"outputType": "TEXT", "exitCode": None, "message": None, "text": None, "textSha256": None},
            }
            thread = threading.Thread(target=self._deliver, args=(command_id,), daemon=True)
            self.threads.append(thread)
        thread.start()
        return dict(command)

    def _set(self, command_id: str, **fields) -> bool:
        """Update an execution unless it was canceled meanwhile; whether it was updated."""
        with self.lock:
            execution = self.executions[command_id]
            if execution["lifecycleState"] == "CANCELED":
                return False
            execution.update(fields, timeUpdated=_now())
            return True

    def _deliver(self, command_id: str) -> None:
        with self.lock:
            execution = self.executions[command_id]
            runner = self.runners[execution["instanceId"]]
            slots = self.slots[execution["instanceId"]]
            command = self.commands[command_id]
        if runner is None:  # nobody polls: the command stays visible until it expires
            time.sleep(SECONDS["expiry"] * self.time_scale)
            self._set(command_id, deliveryState="EXPIRED")
            return
        time.sleep(SECONDS["delivery"] * self.time_scale)
        with slots:
            if not self._set(command_id, deliveryState="ACKED", lifecycleState="IN_PROGRESS"):
                return
            self._run(command_id, runner, command["content"]["source"]["text"], command["executionTimeOutInSeconds"])

    def _run(self, command_id: str, runner, script: str, timeout: int) -> None:
        outcome: dict = {}

        def work():
            try:
                outcome["result"] = runner(script, timeout)
            except (TimeoutError, subprocess.TimeoutExpired):
                outcome["timed_out"] = True
            except Exception as exc:  # the agent could not run it
                outcome["error"] = exc

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        worker.join(timeout=timeout or None)
        if worker.is_alive() or outcome.get("timed_out"):
            self._set(command_id, lifecycleState="TIMED_OUT", content={
                "outputType": "TEXT", "exitCode": None, "text": None, "textSha256": None,
                "message": f"The command did not finish within {timeout} seconds"})
            return
        if "error" in outcome:
            self._set(command_id, lifecycleState="FAILED", content={
                "outputType": "TEXT", "exitCode": None, "text": None, "textSha256": None,
                "message": f"The command could not be run: {outcome['error']}"})
            return
        exit_code, output = outcome["result"]
        text = last_kilobyte(output)
        self._set(command_id, lifecycleState="SUCCEEDED" if exit_code == 0 else "FAILED", content={
            "outputType": "TEXT", "exitCode": exit_code, "message": None, "text": text,
            "textSha256": hashlib.sha256(text.encode()).hexdigest()})

    def _command(self, command_id: str) -> dict:
        command = self.commands.get(command_id)
        if command is None or command["compartmentId"] not in self.compartments:
            raise _not_found(f"instance agent command {command_id}")
        return command

    def execution(self, command_id: str, instance_id: str | None) -> dict:
        if not instance_id:
            raise RunCommandError(400, "MissingParameter", "instanceId is required")
        with self.lock:
            self._command(command_id)
            execution = self.executions[command_id]
            if execution["instanceId"] != instance_id:
                raise _not_found(f"execution of {command_id} on {instance_id}")
            return {**execution, "content": dict(execution["content"])}

    def cancel(self, command_id: str) -> None:
        with self.lock:
            command = self._command(command_id)
            execution = self.executions[command_id]
            if execution["lifecycleState"] in FINAL_STATES or execution["deliveryState"] == "EXPIRED":
                raise RunCommandError(409, "IncorrectState", f"The command is {execution['lifecycleState']} and "
                                                             "can no longer be canceled")
            command.update(isCanceled=True, timeUpdated=_now())
            delivered = execution["deliveryState"] == "ACKED"
            execution.update(lifecycleState="CANCELED", deliveryState="ACKED_CANCELED" if delivered else "VISIBLE",
                             timeUpdated=_now())

    def list_executions(self, query: dict) -> list[dict]:
        compartment, instance_id = query.get("compartmentId"), query.get("instanceId")
        if not compartment or not instance_id:
            raise RunCommandError(400, "MissingParameter", "compartmentId and instanceId are required")
        if compartment not in self.compartments:
            raise _not_found(compartment)
        with self.lock:
            items = [dict(e) for cid, e in self.executions.items()
                     if e["instanceId"] == instance_id and self.commands[cid]["compartmentId"] == compartment]
        if "lifecycleState" in query:
            items = [e for e in items if e["lifecycleState"] == query["lifecycleState"]]
        return sorted(items, key=lambda e: (e["timeCreated"], e["instanceAgentCommandId"]),
                      reverse=query.get("sortOrder", "DESC") == "DESC")

    # ------------------------------------------------------------- routing
    def handle(self, method: str, path: str, query: dict, body: dict) -> tuple[int, object]:
        segments = path[len(API) + 1:].split("/")
        if segments == ["instanceAgentCommands"] and method == "POST":
            return 200, self.create_command(body)
        if segments == ["instanceAgentCommandExecutions"] and method == "GET":
            return 200, self.list_executions(query)
        if len(segments) == 2 and segments[0] == "instanceAgentCommands":
            if method == "GET":
                with self.lock:
                    return 200, dict(self._command(segments[1]))
            if method == "DELETE":
                self.cancel(segments[1])
                return 204, None
        if len(segments) == 3 and segments[0] == "instanceAgentCommands" and segments[2] == "status" and method == "GET":
            return 200, self.execution(segments[1], query.get("instanceId"))
        raise RunCommandError(404, "NotFound", f"No such API {method} {path}")
