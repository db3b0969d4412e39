"""`orm-pack connect --stack`: a deployed stack's URL, user and CA certificate from Resource Manager's outputs
and OCI Certificates, read with the user's own key (the fakes check every request's signature), printed as
what a client evaluates. The test then does what the user does next: evaluates the lines in bash and talks
to a server whose certificate the stack's CA issued, verification on."""
import json
import os
import subprocess
import sys

from cryptography.hazmat.primitives import serialization

from harness.certificates import Authority
from harness.ocids import mint
from harness.tls_server import tls_server
from orm_pack.cloud.resource_manager import MANAGED_BY, TAG_MANAGED_BY
from ormfake.testing import COMPARTMENT

AUTHORITY = mint("certificateauthority", "team-a-ca-1f2e", "us-phoenix-1")
SECRET = mint("vaultsecret", "team-a-login", "us-phoenix-1")
PASSWORD_COMMAND = f"oci secrets secret-bundle get --secret-id {SECRET} --query data"
CHECK = ("import os, sys, requests; "
         "r = requests.get(os.environ['MLFLOW_TRACKING_URI'] + '/health', "
         "verify=os.environ['MLFLOW_TRACKING_SERVER_CERT_PATH']); print(r.status_code)")


def _stack(fake, url: str, ca: Authority | None, name: str = "team-a") -> None:
    outputs = {"mlflow_url": url, "mlflow_username": "alice", "mlflow_password_command": PASSWORD_COMMAND,
               "tls_ca_id": AUTHORITY if ca else ""}
    if ca:
        fake.add_authority(AUTHORITY, "team-a-ca-1f2e", ca.cert.public_bytes(serialization.Encoding.PEM).decode())
    # as orm-pack apply tags the stacks it makes
    fake.add_applied_stack(COMPARTMENT, name, outputs, {TAG_MANAGED_BY: MANAGED_BY})


def _connect(orm_pack_process, fake, *extra):
    return orm_pack_process("connect", "--stack", "--compartment", COMPARTMENT, "--stack-name", "team-a",
                            "--certificates-endpoint", fake.url, *extra)


def test_the_printed_lines_reach_the_stack_with_its_ca_and_verification_on(orm_pack_process, fake, oci_config, tmp_path):
    ca = Authority("team-a CA")
    with tls_server(tmp_path, *ca.issue(addresses=("127.0.0.1",))) as url:
        _stack(fake, url, ca)
        result = _connect(orm_pack_process, fake)
        assert result.code == 0, result.stderr
        saved = oci_config.parent / "team-a-ca.pem"
        assert saved.read_bytes() == ca.cert.public_bytes(serialization.Encoding.PEM)
        assert f"export MLFLOW_TRACKING_SERVER_CERT_PATH={saved}\n" in result.stdout
        assert "export MLFLOW_TRACKING_USERNAME=alice\n" in result.stdout
        assert f'export MLFLOW_TRACKING_PASSWORD="$({PASSWORD_COMMAND})"' in result.stdout
        assert "INSECURE" not in result.stdout + result.stderr
        # what the user runs next: the lines (but the password, which needs the OCI CLI), then a verified request
        exports = "\n".join(line for line in result.stdout.splitlines() if "MLFLOW_TRACKING_PASSWORD" not in line)
        checked = subprocess.run(["bash", "-c", f'{exports}\n"{sys.executable}" -c "{CHECK}"'],
                                 capture_output=True, text=True, timeout=60)
        assert checked.stdout.strip() == "200", checked.stderr
    assert ("GET", f"/20210224/certificateAuthorityBundles/{AUTHORITY}", 200) in fake.requests
    assert fake.auth_failures == []


def test_python_and_json_say_the_same(orm_pack_process, fake, oci_config):
    _stack(fake, "https://203.0.113.9", Authority("team-a CA"))
    saved = str(oci_config.parent / "team-a-ca.pem")
    snippet = _connect(orm_pack_process, fake, "--python")
    assert snippet.code == 0, snippet.stderr
    # the snippet the user pastes, in a Python of its own: it sets os.environ, which must not leak into this one
    probe = snippet.stdout + "\nimport json, os\nprint(json.dumps(dict(os.environ)))\n"
    ran = subprocess.run([sys.executable, "-c", probe], env={"PATH": os.environ["PATH"]},
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    environ = json.loads(ran.stdout)
    assert (environ["MLFLOW_TRACKING_URI"], environ["MLFLOW_TRACKING_SERVER_CERT_PATH"]) == ("https://203.0.113.9", saved)
    document = json.loads(_connect(orm_pack_process, fake, "--json").stdout)
    assert document == {"MLFLOW_TRACKING_URI": "https://203.0.113.9", "MLFLOW_TRACKING_SERVER_CERT_PATH": saved,
                        "MLFLOW_TRACKING_USERNAME": "alice", "password_command": PASSWORD_COMMAND}


def test_a_ca_the_user_may_not_read_stops_with_the_grant_to_ask_for(orm_pack_process, fake, oci_config):
    _stack(fake, "https://203.0.113.9", Authority("team-a CA"))
    fake.unreadable_authorities.add(AUTHORITY)
    result = _connect(orm_pack_process, fake)
    assert result.code != 0 and result.stdout == ""
    assert "read certificate-authority-bundles" in result.stderr and AUTHORITY in result.stderr
    assert not (oci_config.parent / "team-a-ca.pem").exists()


def test_a_stack_without_a_ca_asks_for_a_ca_file_and_prints_nothing(orm_pack_process, fake):
    _stack(fake, "https://203.0.113.9", None)
    result = _connect(orm_pack_process, fake)
    assert result.code != 0 and result.stdout == ""
    assert "has no CA" in result.stderr and "--ca-file" in result.stderr


def test_a_stack_that_does_not_exist_says_so(orm_pack_process, fake):
    result = _connect(orm_pack_process, fake)
    assert result.code != 0 and result.stdout == ""
    assert "team-a" in result.stderr


def test_stack_options_go_with_stack(orm_pack_process, fake):
    result = orm_pack_process("connect", "--stack")
    assert result.code == 2 and "--stack needs --compartment" in result.stderr
    result = orm_pack_process("connect", "--url", "https://203.0.113.9", "--compartment", COMPARTMENT,
                              "--ca-file", "/nonexistent")
    assert result.code == 2 and "--compartment goes with --stack" in result.stderr
