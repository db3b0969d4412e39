"""The Run Command fake (ormfake/runcommand.py) through the real SDK: `orm-pack upgrade` runs its checks and
the migration on the tracking VM, which reaches the database the laptop cannot, and reads the exit code and
the output back. The scripts run for real, in bash, with the environment the test gives the "VM"."""
import hashlib
import os
import subprocess
import threading
import time

import oci
import pytest

from harness import ocids
from ormfake.testing import COMPARTMENT, REGION

TRACKING_VM = ocids.mint("instance", "tracking-vm", REGION)
FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED")


def bash_runner(env: dict):
    """The VM's agent: `bash -c` the script in `env`, stop it at its timeout, stdout and stderr together."""
    def run(script: str, timeout: int):
        result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=timeout or None)
        return result.returncode, result.stdout + result.stderr
    return run


@pytest.fixture
def agent(fake, oci_config):
    fake.run_command.time_scale = 0.001
    fake.add_instance(TRACKING_VM, bash_runner({"PATH": os.environ["PATH"], "MLFLOW_DB_HOST": "10.0.1.10"}))
    config = oci.config.from_file(str(oci_config))
    return oci.compute_instance_agent.ComputeInstanceAgentClient(config, service_endpoint=fake.url,
                                                                 retry_strategy=oci.retry.NoneRetryStrategy())


def _command(agent, script: str, timeout: int = 60, instance_id: str = TRACKING_VM):
    models = oci.compute_instance_agent.models
    return agent.create_instance_agent_command(models.CreateInstanceAgentCommandDetails(
        compartment_id=COMPARTMENT, execution_time_out_in_seconds=timeout, display_name="upgrade-check",
        target=models.InstanceAgentCommandTarget(instance_id=instance_id),
        content=models.InstanceAgentCommandContent(
            source=models.InstanceAgentCommandSourceViaTextDetails(text=script),
            output=models.InstanceAgentCommandOutputViaTextDetails()))).data


def _finished(agent, command_id: str, instance_id: str = TRACKING_VM, seconds: float = 30):
    return oci.wait_until(agent, agent.get_instance_agent_command_execution(command_id, instance_id),
                          evaluate_response=lambda r: r.data.lifecycle_state in FINAL,
                          max_wait_seconds=seconds, max_interval_seconds=0.05).data


def _service_error(call, *args) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call(*args)
    return caught.value


def test_a_script_runs_on_the_vm_and_its_output_and_exit_code_come_back(agent):
    command = _command(agent, 'echo "checking $MLFLOW_DB_HOST"; echo warning >&2')
    assert command.id.startswith("ocid1.instanceagentcommand.oc1.phx.") and ocids.shape_problem(command.id) is None
    assert agent.get_instance_agent_command(command.id).data.execution_time_out_in_seconds == 60
    execution = _finished(agent, command.id)
    assert (execution.lifecycle_state, execution.delivery_state) == ("SUCCEEDED", "ACKED")
    assert execution.content.exit_code == 0 and execution.content.output_type == "TEXT"
    assert execution.content.text == "checking 10.0.1.10\nwarning\n"
    assert execution.content.text_sha256 == hashlib.sha256(execution.content.text.encode()).hexdigest()
    listed = agent.list_instance_agent_command_executions(COMPARTMENT, TRACKING_VM).data
    assert [(e.instance_agent_command_id, e.lifecycle_state) for e in listed] == [(command.id, "SUCCEEDED")]


def test_a_script_that_exits_non_zero_fails_with_its_exit_code(agent):
    execution = _finished(agent, _command(agent, "echo 'migration 42 failed'; exit 3").id)
    assert (execution.lifecycle_state, execution.content.exit_code) == ("FAILED", 3)
    assert execution.content.text == "migration 42 failed\n"


def test_text_output_keeps_only_its_last_kilobyte(agent):
    script = "for i in $(seq 1 500); do printf 'line %04d\\n' $i; done; echo THE-VERDICT"
    execution = _finished(agent, _command(agent, script).id)
    text = execution.content.text
    assert len(text.encode()) == 1024 and text.endswith("line 0500\nTHE-VERDICT\n")
    assert "line 0001" not in text


def test_a_script_longer_than_four_kilobytes_is_refused(agent):
    error = _service_error(_command, agent, "#" * 4097)
    assert (error.status, error.code) == (400, "InvalidParameter") and "4 KB" in error.message
    assert _finished(agent, _command(agent, "#" * 4000 + "\ntrue").id).lifecycle_state == "SUCCEEDED"


def test_a_script_still_running_at_its_timeout_times_out(agent):
    started = time.monotonic()
    execution = _finished(agent, _command(agent, "echo started; sleep 20", timeout=1).id)
    assert execution.lifecycle_state == "TIMED_OUT" and execution.content.exit_code is None
    assert time.monotonic() - started < 10


def test_an_instance_the_tenancy_does_not_have_is_not_found(agent):
    error = _service_error(_command, agent, "true", 60, ocids.mint("instance", "gone", REGION))
    assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")


def test_a_command_for_an_agent_that_never_polls_stays_accepted_then_expires(fake, agent):
    silent = ocids.mint("instance", "plugin-disabled", REGION)
    fake.add_instance(silent, None)
    command = _command(agent, "true", 60, silent)
    execution = agent.get_instance_agent_command_execution(command.id, silent).data
    assert (execution.lifecycle_state, execution.delivery_state) == ("ACCEPTED", "VISIBLE")
    expired = oci.wait_until(agent, agent.get_instance_agent_command_execution(command.id, silent),
                             "delivery_state", "EXPIRED", max_wait_seconds=30, max_interval_seconds=0.05).data
    assert expired.lifecycle_state == "ACCEPTED"
    assert _service_error(agent.cancel_instance_agent_command, command.id).status == 409
    assert _service_error(agent.get_instance_agent_command_execution, command.id, TRACKING_VM).status == 404


def test_a_command_is_canceled_before_it_runs_but_not_after_it_finished(fake, agent):
    silent = ocids.mint("instance", "slow-agent", REGION)
    fake.add_instance(silent, None)
    waiting = _command(agent, "true", 60, silent)
    agent.cancel_instance_agent_command(waiting.id)
    assert agent.get_instance_agent_command(waiting.id).data.is_canceled is True
    assert agent.get_instance_agent_command_execution(waiting.id, silent).data.lifecycle_state == "CANCELED"
    done = _command(agent, "true")
    _finished(agent, done.id)
    error = _service_error(agent.cancel_instance_agent_command, done.id)
    assert (error.status, error.code) == (409, "IncorrectState")


def test_two_scripts_run_at_a_time_and_a_third_waits(fake, agent):
    busy_vm = ocids.mint("instance", "busy", REGION)
    release = threading.Event()

    def runner(script, timeout):
        release.wait(30)
        return 0, "ok\n"

    fake.add_instance(busy_vm, runner)
    commands = [_command(agent, "true", 60, busy_vm).id for _ in range(3)]

    def states():
        return sorted((e.lifecycle_state, e.delivery_state) for e in
                      (agent.get_instance_agent_command_execution(c, busy_vm).data for c in commands))

    deadline = time.monotonic() + 30
    while states().count(("IN_PROGRESS", "ACKED")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # long enough for a third to start, were it allowed to
    assert states() == [("ACCEPTED", "VISIBLE"), ("IN_PROGRESS", "ACKED"), ("IN_PROGRESS", "ACKED")]
    release.set()
    assert [_finished(agent, c, busy_vm).lifecycle_state for c in commands] == ["SUCCEEDED"] * 3
