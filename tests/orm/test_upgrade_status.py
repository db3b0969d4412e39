"""`orm-pack upgrade --status`: a console user changed the MLflow version in the form and applied; the new tracking
VM's pre-checks refused the migration, so it runs the version that last served the database and says why in
`mlflow-upgrade status` (userdata/mlflow-upgrade.sh), whose last line is `refused: <why>` (`refused: none`
otherwise; tests/stack/test_mlflow_upgrade.py pins that output). From the laptop, through Run Command (the fake
keeps only the output's last kilobyte, as OCI does), the command prints it and exits 1 on a refusal."""
from harness import ocids
from orm_pack.cloud.resource_manager import MANAGED_BY, TAG_MANAGED_BY
from ormfake.testing import COMPARTMENT, REGION

STACK = "mlflow-status"
TRACKING_VM = ocids.mint("instance", "status-tracking-vm", REGION)
STATUS_SCRIPT = "sudo /usr/local/sbin/mlflow-upgrade status"
REFUSAL = ("2026-12-07T10:02:11Z upgrade to MLflow 3.17.2 refused: table `experiment_tags` is not in utf8mb4; "
           "running MLflow 3.16.1, which last served this database, on the untouched database")
FIX = "fix: ALTER TABLE `experiment_tags` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci;"


def _status_output(running: str, refused: str) -> str:
    """What mlflow-upgrade status prints: 40 lines of the boot log, 40 of the journal, then the summary."""
    boot = [f"2026-12-07T10:0{i // 10}:{i % 10}0Z [tracking] step {i}" for i in range(40)]
    journal = [f"2026-12-07T10:03:{i:02d}+0000 vm mlflow[812]: request {i}" for i in range(40)]
    return "\n".join(["--- last 40 lines of /var/log/mlflow-bootstrap.log", *boot,
                      "--- last 40 lines of journalctl -u mlflow-tracking", *journal, "---",
                      "service: mlflow-tracking active",
                      f"mlflow_version: 3.17.2 (the stack), {running} (the image it runs: localhost/mlflow-tracking:latest)",
                      "versions: 3.17.2 3.16.1 3.15.2", *([FIX] if refused != "none" else []),
                      f"refused: {refused}"]) + "\n"


def _deployed(fake, tracking_instance_id: str, answer: str | None = None) -> list[tuple[str, int]]:
    """A stack applied earlier with MLflow 3.17.2 in the form, and its tracking VM's agent; returns the scripts
    the VM was given."""
    fake.add_applied_stack(COMPARTMENT, STACK, {"mlflow_version": "3.17.2", "tracking_instance_id": tracking_instance_id,
                                                "mlflow_url": "https://203.0.113.10"}, {TAG_MANAGED_BY: MANAGED_BY})
    given = []
    if tracking_instance_id:
        fake.run_command.time_scale = 0.001

        def runner(script: str, timeout: int):
            given.append((script, timeout))
            return (0, answer) if script == STATUS_SCRIPT else (2, "usage: mlflow-upgrade plan VERSION | status\n")
        fake.add_instance(tracking_instance_id, runner)
    return given


def _status(orm_pack_process, fake, *extra):
    return orm_pack_process("upgrade", "--status", "--compartment", COMPARTMENT, "--stack-name", STACK,
                            "--compute-agent-endpoint", fake.url, *extra)


def test_a_refused_upgrade_is_printed_and_exits_1(orm_pack_process, fake):
    given = _deployed(fake, TRACKING_VM, _status_output("3.16.1", REFUSAL))
    result = _status(orm_pack_process, fake)
    assert result.code == 1, result
    assert given == [(STATUS_SCRIPT, 120)]
    # what OCI hands back (the last kilobyte) is printed, the summary at its end
    assert result.stdout.rstrip("\n").endswith(
        "mlflow_version: 3.17.2 (the stack), 3.16.1 (the image it runs: localhost/mlflow-tracking:latest)\n"
        f"versions: 3.17.2 3.16.1 3.15.2\n{FIX}\nrefused: {REFUSAL}")  # the fix's SQL too
    assert "step 0\n" not in result.stdout
    assert result.stderr.strip().splitlines()[-1] == f"orm-pack: error: the tracking VM refused an upgrade at boot: {REFUSAL}"
    assert fake.auth_failures == []


def test_a_vm_that_refused_nothing_exits_0(orm_pack_process, fake):
    _deployed(fake, TRACKING_VM, _status_output("3.17.2", "none"))
    result = _status(orm_pack_process, fake)
    assert result.code == 0, result
    assert result.stdout.rstrip("\n").endswith("versions: 3.17.2 3.16.1 3.15.2\nrefused: none")
    assert "error" not in result.stderr


def test_an_oke_stack_says_where_its_migrations_say_why(orm_pack_process, fake):
    _deployed(fake, "")
    result = _status(orm_pack_process, fake)
    assert result.code == 2, result
    assert "runs MLflow on OKE" in result.stderr and "`kubectl -n mlflow logs job/mlflow-migrate`" in result.stderr
    assert not [r for r in fake.requests if r[1].startswith("/20180530/")]  # no Run Command was sent


def test_status_takes_neither_a_version_nor_a_dry_run(orm_pack_process, fake):
    for extra in (("--to", "3.17.2"), ("--dry-run",)):
        result = _status(orm_pack_process, fake, *extra)
        assert result.code == 2, result
        assert "--status changes nothing: it takes neither --to nor --dry-run" in result.stderr
    assert fake.requests == [] and fake.stacks == {}
