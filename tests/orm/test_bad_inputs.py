"""Every bad input a user can give orm-pack: one clear line, a documented exit code, no traceback,
and nothing sent or made before the input was checked."""
import socket
import zipfile
from dataclasses import dataclass, field

import pytest

from ormfake.testing import COMPARTMENT, FIXTURE_SOURCE, TESTS_DIR

DATA_SOURCE = TESTS_DIR / "orm" / "fixtures" / "stack-data"
SMALL = ("--compartment", COMPARTMENT, "--stack-name", "bad-inputs", "--source", str(FIXTURE_SOURCE))
DATA = ("--compartment", COMPARTMENT, "--stack-name", "bad-inputs", "--source", str(DATA_SOURCE))
PASSWORD_ENV = {"ORM_PACK_VAR_mysql_admin_password": "Sup3r-Secret-pw"}
STACK_OCID = "ocid1.ormstack.oc1.phx.amaaaaaaqi3vqdhviwxhg5fztezvqlq5dhm2ecrceazpvedwikiibxrozmqa"


@dataclass
class Case:
    args: tuple
    code: int
    message: str                                # expected in the one error line
    env: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)   # name -> bytes, written into the test's directory first
    auth: bool = True                           # False: the runner adds no --config-file/--endpoint


CASES = {
    "var-file that is not text": Case(
        ("plan", *SMALL, "--var-file", "{tmp}/vars.json"), 2,
        "--var-file {tmp}/vars.json is not a text file: pass a .json, .yaml or .tfvars file",
        files={"vars.json": bytes(range(256)) * 4}),
    "var-file with a NUL": Case(
        ("plan", *SMALL, "--var-file", "{tmp}/vars.yaml"), 2, "is not a text file",
        files={"vars.yaml": b"name_prefix: demo\x00\n"}),
    "endpoint that is not a URL": Case(
        ("status", "--compartment", COMPARTMENT, "--endpoint", "not a url"), 2,
        "--endpoint 'not a url' is not an http(s) URL"),
    "endpoint from the environment with another scheme": Case(
        ("status", "--compartment", COMPARTMENT, "--config-file", "{config}"), 2,
        "--endpoint 'ftp://example.com' is not an http(s) URL", env={"OCI_CLI_ENDPOINT": "ftp://example.com"},
        auth=False),
    "endpoint with a port that is not a number": Case(
        ("status", "--compartment", COMPARTMENT, "--endpoint", "https://host:port"), 2, "is not an http(s) URL"),
    "nan for a number": Case(
        ("plan", *DATA, "--var", "availability_domain_index=nan"), 2,
        "variable 'availability_domain_index' is a number: 'nan' is not a finite one", env=PASSWORD_ENV),
    "1e400 for a number": Case(
        ("plan", *DATA, "--var", "availability_domain_index=1e400"), 2, "'1e400' is not a finite one",
        env=PASSWORD_ENV),
    "inf from a var-file": Case(
        ("plan", *DATA, "--var-file", "{tmp}/vars.yaml"), 2, "'inf' is not a finite one",
        env=PASSWORD_ENV, files={"vars.yaml": b"availability_domain_index: .inf\n"}),
    "job id that is a path": Case(
        ("logs", "x/../../y"), 2, "JOB 'x/../../y' is not an OCID"),
    "job id of another kind": Case(
        ("outputs", STACK_OCID), 2, f"JOB '{STACK_OCID}' is the OCID of a ormstack, not of a ormjob"),
    "compartment that is a path": Case(
        ("status", "--compartment", "../../20180917/stacks"), 2, "--compartment '../../20180917/stacks' is not an OCID"),
    "unknown variable from the environment": Case(
        ("plan", *SMALL), 2, "unknown variable 'name_prefx'; did you mean 'name_prefix'?",
        env={"ORM_PACK_VAR_name_prefx": "demo"}),
    "zip that is not a zip": Case(
        ("plan", *SMALL[:4], "--zip", "{tmp}/stack.zip"), 2, "--zip {tmp}/stack.zip is not a zip file",
        files={"stack.zip": b"not a zip"}),
    "zip over the limit": Case(
        ("plan", *SMALL[:4], "--zip", "{tmp}/big.zip"), 7, "over Resource Manager's 11 MB limit",
        files={"big.zip": b"PK" + b"\0" * (12 * 1024 * 1024)}),
    "missing OCI config": Case(
        ("status", "--compartment", COMPARTMENT, "--config-file", "{tmp}/nope"), 3,
        "OCI config file {tmp}/nope not found: create it with `oci setup config`"),
    "no retries at all": Case(
        ("status", "--compartment", COMPARTMENT, "--max-attempts", "0"), 2, "--max-attempts must be at least 1"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_clear_line(name, orm_pack, fake, tmp_path, oci_config):
    case = CASES[name]
    for file_name, data in case.files.items():
        (tmp_path / file_name).write_bytes(data)
    args = [arg.replace("{tmp}", str(tmp_path)).replace("{config}", str(oci_config)) for arg in case.args]
    result = orm_pack(*args, env=case.env, auth=case.auth)
    assert result.code == case.code, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("orm-pack: error: "), result
    assert case.message.replace("{tmp}", str(tmp_path)) in lines[-1]
    assert fake.stacks == {} and fake.jobs == {}
    if case.code in (2, 3, 7):
        assert fake.requests == [], "a bad input was sent before it was checked"


def test_loose_key_and_config_permissions_are_warned_about_like_oci_cli(orm_pack, fake, oci_config):
    key = oci_config.parent / "default_api_key.pem"
    assert key.is_file()
    key.chmod(0o666)
    oci_config.chmod(0o644)
    result = orm_pack("status", "--compartment", COMPARTMENT)
    assert result.code == 4, result  # it went on: no stack yet
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING: permissions")]
    assert warnings == [
        f"WARNING: permissions on {oci_config} are too open (644): others on this machine may read it; fix with "
        f"`chmod 600 {oci_config}` (or set OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING=True)",
        f"WARNING: permissions on {key} are too open (666): others on this machine may read it; fix with "
        f"`chmod 600 {key}` (or set OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING=True)"]
    quiet = orm_pack("status", "--compartment", COMPARTMENT, env={"OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING": "True"})
    assert quiet.code == 4 and "WARNING" not in quiet.stderr, quiet
    key.chmod(0o400)
    oci_config.chmod(0o600)
    assert "WARNING" not in orm_pack("status", "--compartment", COMPARTMENT).stderr


def test_an_endpoint_that_does_not_answer_is_retried_out_loud(orm_pack):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = orm_pack("status", "--compartment", COMPARTMENT, "--endpoint", f"http://127.0.0.1:{port}",
                      "--max-attempts", "2", retries=True, timeout=120)
    assert result.code == 6, result
    notices = [line for line in result.stderr.splitlines() if line.startswith("Resource Manager did not answer")]
    assert [n.split(";")[1].split(" in ")[0] for n in notices] == [" attempt 2 of 2"], result
    assert all(n.endswith(" s") for n in notices)
    assert result.stderr.strip().splitlines()[-1] == (
        f"orm-pack: error: cannot reach Resource Manager (http://127.0.0.1:{port}): RequestException; check "
        "--region, --endpoint and your network or proxy")


def test_a_smuggled_zip_is_refused_before_upload(orm_pack, fake, tmp_path):
    smuggled = tmp_path / "stack.zip"
    build = orm_pack("build", str(FIXTURE_SOURCE), "-o", str(smuggled))
    assert build.code == 0, build
    with zipfile.ZipFile(smuggled, "a") as archive:
        archive.writestr(".env", "OCI_KEY=secret")
    result = orm_pack("plan", *SMALL[:4], "--zip", str(smuggled))
    assert result.code == 2, result
    assert "holds '.env', which a stack zip never carries" in result.stderr
    assert fake.requests == []
