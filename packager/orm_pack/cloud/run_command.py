"""Commands run on an instance through OCI's Run Command (the Compute Instance Agent API): how orm-pack reaches
what only the VM can reach (MySQL in the private subnet) without SSH or an open port.

The instance's Oracle Cloud Agent polls for commands, runs each as the `ocarun` user and returns its exit code
and output (the stack enables the plugin, lets the VMs' dynamic group take commands, and lets `ocarun` run
/usr/local/sbin/mlflow-upgrade as root, nothing else). The output comes back as text, which OCI truncates, so
the VM side keeps what it prints short.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from orm_pack.errors import ExitCode, UserError

DONE_STATES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED")


@dataclass(frozen=True)
class CommandResult:
    command_id: str
    state: str            # SUCCEEDED, FAILED, TIMED_OUT, CANCELED
    exit_code: int | None
    output: str
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCEEDED" and self.exit_code == 0


class RunCommand:
    def __init__(self, client, poll_seconds: float = 5.0):
        self.client = client
        self.poll_seconds = poll_seconds

    def run(self, compartment_id: str, instance_id: str, script: str, timeout_seconds: int,
            display_name: str = "orm-pack") -> CommandResult:
        """Runs `script` (bash) on the instance and waits for it; the agent may take a minute to pick it up."""
        import oci
        from oci.compute_instance_agent import models

        details = models.CreateInstanceAgentCommandDetails(
            compartment_id=compartment_id, display_name=display_name,
            execution_time_out_in_seconds=timeout_seconds,
            target=models.InstanceAgentCommandTarget(instance_id=instance_id),
            content=models.InstanceAgentCommandContent(
                source=models.InstanceAgentCommandSourceViaTextDetails(source_type="TEXT", text=script),
                output=models.InstanceAgentCommandOutputViaTextDetails(output_type="TEXT")))
        try:
            command = self.client.create_instance_agent_command(details).data
        except oci.exceptions.ServiceError as exc:
            raise UserError(f"Run Command refused the command for instance {instance_id} ({exc.status} {exc.code}: "
                            f"{exc.message}); your user needs `manage instance-agent-command-family` in the "
                            "compartment", ExitCode.FAILURE) from None
        # The agent's delivery and the command together; the agent polls about every minute.
        deadline = time.monotonic() + timeout_seconds + 300
        while True:
            try:
                execution = self.client.get_instance_agent_command_execution(command.id, instance_id).data
            except oci.exceptions.ServiceError as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
                execution = None  # not delivered yet
            if execution is not None and execution.lifecycle_state in DONE_STATES:
                content = execution.content
                return CommandResult(command.id, execution.lifecycle_state, getattr(content, "exit_code", None),
                                     getattr(content, "text", None) or "", getattr(content, "message", None) or "")
            if time.monotonic() > deadline:
                self.client.cancel_instance_agent_command(command.id)
                raise UserError(f"instance {instance_id} did not run command {command.id} within "
                                f"{timeout_seconds + 300}s: is its Oracle Cloud Agent running with the Compute "
                                "Instance Run Command plugin?", ExitCode.FAILURE)
            time.sleep(self.poll_seconds)
