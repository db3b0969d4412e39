"""What a user sees when things go wrong: one clear line, a distinct exit code, nothing half-made."""
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ormfake import ApiKey, write_oci_config
from ormfake.testing import COMPARTMENT, FIXTURE_SOURCE, cli_env

STACK = "mlflow-errors"
COMMON = ("--compartment", COMPARTMENT, "--stack-name", STACK, "--source", str(FIXTURE_SOURCE))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_wrong_key_names_the_profile_and_config_to_fix(orm_pack, fake, tmp_path, api_key):
    # the config claims the registered key's fingerprint but holds another private key
    other = ApiKey.generate()
    config = write_oci_config(tmp_path / "wrong", other, profile="WORK", fingerprint=api_key.fingerprint)
    result = orm_pack("status", "--compartment", COMPARTMENT, "--config-file", str(config), "--profile", "WORK")
    assert result.code == 3, result
    message = _last_line(result.stderr)
    assert "401 NotAuthenticated" in message
    assert f"profile [WORK] of {config}" in message
    assert "Traceback" not in result.stderr
    assert fake.auth_failures and "does not verify" in fake.auth_failures[-1]
    assert fake.requests[-1][2] == 401


def test_missing_config_file_says_how_to_make_one(orm_pack, tmp_path):
    result = orm_pack("status", "--compartment", COMPARTMENT, "--config-file", str(tmp_path / "nope"))
    assert result.code == 3, result
    assert "oci setup config" in result.stderr and str(tmp_path / "nope") in result.stderr


def test_unknown_profile_lists_the_profiles(orm_pack, oci_config):
    result = orm_pack("status", "--compartment", COMPARTMENT, "--profile", "PROD")
    assert result.code == 3, result
    assert "profile [PROD] is not in" in result.stderr and "DEFAULT" in result.stderr


def test_profile_from_environment_like_oci_cli(orm_pack, fake, tmp_path, api_key):
    config = write_oci_config(tmp_path / "env", api_key, profile="FROMENV")
    result = orm_pack("status", "--compartment", COMPARTMENT, "--config-file", str(config),
                      env={"OCI_CLI_PROFILE": "FROMENV"})
    assert result.code == 4, result  # authenticated fine; there is no stack yet
    assert "no orm-pack stack named 'oci-mlflow'" in result.stderr


@pytest.mark.terraform
def test_failing_job_exits_non_zero_with_the_log_tail(orm_pack, fake):
    # the stack's validation block rejects this name: Terraform fails inside the PLAN job
    result = orm_pack("apply", *COMMON, "--auto-approve", "--var", "name_prefix=Bad_Name")
    assert result.code == 1, result
    (job,) = fake.jobs.values()
    assert job["lifecycleState"] == "FAILED"
    assert f"PLAN job {job['id']} FAILED" in result.stdout
    match = re.search(r"Last (\d+) log lines:\n", result.stdout)
    assert match and 0 < int(match.group(1)) <= 30, result.stdout
    tail = result.stdout[match.end():]
    assert len(tail.splitlines()) == int(match.group(1))
    assert "name_prefix must be 1-16 lowercase letters" in " ".join(tail.split())
    assert job["id"] in _last_line(result.stderr) and "orm-pack logs" in _last_line(result.stderr)
    assert not any(j["operation"] == "APPLY" for j in fake.jobs.values())


def test_unknown_variable_is_rejected_before_anything_is_made(orm_pack, fake):
    result = orm_pack("apply", *COMMON, "--auto-approve", "--var", "name_prefx=demo")
    assert result.code == 2, result
    assert _last_line(result.stderr) == "orm-pack: error: unknown variable 'name_prefx'; did you mean 'name_prefix'?"
    assert fake.stacks == {} and fake.jobs == {}


def test_badly_typed_variable_is_rejected(orm_pack, fake):
    result = orm_pack("plan", *COMMON, "--var", "allowed_ingress_cidrs=10.0.0.0/8")
    assert result.code == 2, result
    assert "allowed_ingress_cidrs" in result.stderr and "pass JSON" in result.stderr
    assert fake.stacks == {}


def test_transient_429_and_503_are_retried(orm_pack, fake):
    fake.add_fault(429, count=1)
    fake.add_fault(503, count=1)
    result = orm_pack("status", "--compartment", COMPARTMENT, "--stack-name", STACK, retries=True)
    assert result.code == 4, result  # got through to the real answer: no such stack
    assert [status for _, _, status in fake.requests[:3]] == [429, 503, 200]


def test_throttling_without_retries_is_one_clear_line(orm_pack, fake):
    fake.add_fault(429, count=1)
    result = orm_pack("status", "--compartment", COMPARTMENT, "--stack-name", STACK)
    assert result.code == 6, (result, fake.requests)
    assert "throttled" in _last_line(result.stderr)
    assert "Traceback" not in result.stderr


def test_missing_compartment_is_one_clear_line(orm_pack, fake):
    missing = "ocid1.compartment.oc1..aaaaaaaadeuipczisqitb53au2xyllnbkxaewjwmraxrkmoapbrbq7vrjgaa"
    result = orm_pack("apply", "--compartment", missing, "--source", str(FIXTURE_SOURCE), "--auto-approve")
    assert result.code == 4, result
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines == [f"orm-pack: error: compartment {missing} not found, or you may not use it (404 "
                     "NotAuthorizedOrNotFound): check --compartment and your IAM policies"]
    assert fake.stacks == {}


@pytest.mark.terraform
def test_apply_without_a_terminal_needs_auto_approve(orm_pack, fake):
    result = orm_pack("apply", *COMMON)
    assert result.code == 2, result
    assert "pass --auto-approve" in _last_line(result.stderr)
    assert [j["operation"] for j in fake.jobs.values()] == ["PLAN"]  # planned, nothing applied


@pytest.mark.terraform
def test_ctrl_c_leaves_the_job_running_and_says_how_to_follow(tmp_path, oci_config, fake):
    fake.job_start_delay = 60
    command = [sys.executable, "-X", "faulthandler", "-m", "orm_pack.cli", "plan", *COMMON, "--config-file",
               str(oci_config), "--endpoint", fake.url, "--poll-interval", "0.2", "--max-attempts", "1"]
    home = tmp_path / "home"
    home.mkdir()
    # As in a user's terminal, Ctrl-C is not ignored: a suite started in the background by a
    # non-interactive shell (`cmd &`, nohup) runs with SIGINT ignored, every child inherits that, and
    # Python keeps an inherited SIG_IGN instead of raising KeyboardInterrupt.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=cli_env(home), cwd=tmp_path,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and not any(j["lifecycleState"] == "IN_PROGRESS" for j in fake.jobs.values()):
        time.sleep(0.2)
    time.sleep(1.0)  # the CLI is following the job now
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        status = [line for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
                  if line.startswith(("State", "Sig", "Threads"))]
        process.send_signal(signal.SIGABRT)  # -X faulthandler: every thread's stack, to see where it hangs
        try:
            stdout, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        pytest.fail(f"the CLI was still running 60 s after Ctrl-C ({status}):\n{stdout}\n{stderr}")
    assert process.returncode == 130, (stdout, stderr)
    (job,) = fake.jobs.values()
    assert job["lifecycleState"] == "IN_PROGRESS"  # not canceled
    output = stdout + stderr
    assert f"PLAN job {job['id']} keeps running" in output
    assert f"orm-pack logs {job['id']} --follow" in output


@pytest.mark.terraform
def test_plan_json_and_changed_zip_is_uploaded(orm_pack, fake, tmp_path):
    import shutil

    source = tmp_path / "source"
    shutil.copytree(FIXTURE_SOURCE, source)
    common = ("--compartment", COMPARTMENT, "--stack-name", STACK, "--source", str(source))
    first = orm_pack("plan", *common, "--json")
    assert first.code == 0, first
    doc = json.loads(first.stdout)
    assert doc["stack_action"] == "created" and doc["plan"]["add"] == 3
    assert [(c["address"], c["action"]) for c in doc["plan"]["changes"]] == [
        ("oci_core_instance.serving[0]", "create"), ("oci_core_instance.tracking", "create"),
        ("oci_core_vcn.mlflow", "create")]
    assert doc["plan"]["data_at_risk"] == []
    zip_before = fake.stack_zips[doc["stack_id"]]
    again = json.loads(orm_pack("plan", *common, "--json").stdout)
    assert again["stack_action"] == "unchanged" and fake.stack_zips[doc["stack_id"]] == zip_before
    (source / "userdata" / "commands.txt.tftpl").write_text("# ${role} ${ip}\n")
    changed = orm_pack("plan", *common, "--json")
    assert json.loads(changed.stdout)["stack_action"] == "updated", changed
    assert "Stack mlflow-errors" in changed.stderr and "(configuration)" in changed.stderr
    assert fake.stack_zips[doc["stack_id"]] != zip_before
