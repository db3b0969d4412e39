"""`orm-pack doctor` and `orm-pack users` verify the server's certificate and name what does not match: a
certificate from another CA, an expired one, one for another address (with the names it carries); a
certificate near its expiry passes with a warning; `--insecure` checks nothing and says so on stderr. Tiny
TLS servers on 127.0.0.1, certificates made with `cryptography` (the tests' dependency, not orm-pack's)."""
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization

from harness.certificates import Authority
from harness.tls_server import tls_server
from orm_pack.cli import main as orm_pack
from orm_pack.local.services import python_env
from orm_pack.mlflow_api import doctor, http_client

CA_ENV = "MLFLOW_TRACKING_SERVER_CERT_PATH"  # MLflow's own setting


@pytest.fixture(scope="module")
def ours():
    return Authority("deployment CA")


@pytest.fixture
def ca_file(ours, tmp_path):
    return ours.write(tmp_path / "ca.pem")


def _tls_check(url: str, ca_file: str) -> doctor.Check:
    return doctor.check_tls(http_client.Endpoint(url, "mlflow", "secret", 5, ca_file=ca_file))


def test_a_certificate_from_the_ca_passes_and_says_what_it_names(ours, ca_file, tmp_path):
    with tls_server(tmp_path, *ours.issue(("127.0.0.1", "::1"), ("localhost",))) as url:
        check = _tls_check(url, ca_file)
    assert check.passed, check
    assert f"certificate verified with the CA in {ca_file} (for 127.0.0.1, ::1, localhost; until" in check.detail
    assert "WARNING" not in check.detail


def test_a_certificate_from_another_ca_fails_naming_its_issuer(ca_file, tmp_path):
    with tls_server(tmp_path, *Authority("someone else's CA").issue()) as url:
        check = _tls_check(url, ca_file)
    assert not check.passed
    assert check.detail == f"the server shows a certificate issued by CN=someone else's CA, not one from the CA in {ca_file}"
    assert "another server answers at this address" in check.fix


def test_an_expired_certificate_fails_saying_when_it_expired(ours, ca_file, tmp_path):
    cert, key = ours.issue(days_left=-3, days_old=30)
    with tls_server(tmp_path, cert, key) as url:
        check = _tls_check(url, ca_file)
    assert not check.passed
    assert check.detail == f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"


def test_a_certificate_for_another_address_fails_naming_the_ones_it_carries(ours, ca_file, tmp_path):
    with tls_server(tmp_path, *ours.issue(("127.0.0.2", "10.0.0.7"), ("mlflow.internal",))) as url:
        check = _tls_check(url, ca_file)
    assert not check.passed
    assert check.detail == "the certificate does not name 127.0.0.1: it names 127.0.0.2, 10.0.0.7, mlflow.internal"


def test_a_certificate_near_its_expiry_passes_with_a_warning(ours, ca_file, tmp_path):
    cert, key = ours.issue(days_left=12.5)
    with tls_server(tmp_path, cert, key) as url:
        check = _tls_check(url, ca_file)
    assert check.passed
    assert check.detail.endswith(f"; WARNING: it expires in 12 days ({cert.not_valid_after_utc:%Y-%m-%d}): "
                                 "renew it before then")


def test_without_a_ca_file_the_system_store_decides(ours, tmp_path):
    with tls_server(tmp_path, *ours.issue()) as url:
        check = doctor.check_tls(http_client.Endpoint(url, "mlflow", "secret", 5))
    assert not check.passed and "not one from the system's trusted CAs" in check.detail


def _cli(*args, env_extra=None):
    env = {k: v for k, v in python_env().items() if not k.startswith("MLFLOW_")}
    env.update({"MLFLOW_TRACKING_PASSWORD": "secret", **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "orm_pack.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_doctor_stops_at_a_failed_tls_line_and_takes_the_ca_from_mlflows_variable(tmp_path):
    other = Authority("someone else's CA")
    with tls_server(tmp_path, *other.issue()) as url:
        wrong = _cli("doctor", url, env_extra={CA_ENV: Authority("deployment CA").write(tmp_path / "ca.pem")})
        right = _cli("doctor", url, env_extra={CA_ENV: other.write(tmp_path / "other.pem")})
    assert wrong.returncode == 1, wrong
    assert wrong.stdout.splitlines()[0].startswith("FAIL  tls          the server shows a certificate issued by "
                                                   "CN=someone else's CA, not one from the CA in ")
    assert wrong.stdout.rstrip().endswith("1 of 1 checks failed")  # nothing after it
    assert right.stdout.splitlines()[0].startswith("PASS  tls"), right.stdout
    assert "health" in right.stdout


def test_insecure_checks_nothing_and_warns_on_stderr(ours, tmp_path):
    with tls_server(tmp_path, *Authority("someone else's CA").issue()) as url:
        result = _cli("doctor", url, "--insecure", "--artifact-mb", "1")
    tls_line = result.stdout.splitlines()[0]
    assert tls_line.startswith("PASS  tls") and tls_line.endswith("certificate NOT verified (--insecure)")
    assert "WARNING: --insecure: the server's certificate is not verified" in result.stderr


def test_users_verifies_with_the_ca_and_insecure_warns(ours, ca_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "secret")
    for name in ("MLFLOW_TRACKING_INSECURE_TLS", CA_ENV):
        monkeypatch.delenv(name, raising=False)
    with tls_server(tmp_path, *ours.issue(("127.0.0.2",))) as url:
        assert orm_pack(["users", "list", "--url", url, "--ca-file", ca_file]) == 3
        refused = capsys.readouterr()
        assert "the certificate does not name 127.0.0.1: it names 127.0.0.2" in refused.err
        assert orm_pack(["users", "list", "--url", url, "--insecure"]) == 0
        insecure = capsys.readouterr()
    assert insecure.out == "mlflow  (admin)\n"
    assert "WARNING: --insecure: the server's certificate is not verified" in insecure.err
    with tls_server(tmp_path, *ours.issue()) as url:
        assert orm_pack(["users", "list", "--url", url, "--ca-file", ca_file]) == 0
    assert capsys.readouterr().err == ""


def test_a_ca_file_that_cannot_be_read_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "secret")
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")   # a named CA wins over MLflow's switch
    assert orm_pack(["users", "list", "--url", "https://127.0.0.1:9", "--ca-file", str(tmp_path / "none.pem")]) == 2
    assert "--ca-file" in capsys.readouterr().err


def test_the_certificate_reader_gives_what_cryptography_reads(ours):
    from orm_pack.mlflow_api import tls

    cert, _ = ours.issue(("127.0.0.1", "fd00::5"), ("a.example", "b.example"), days_left=40)
    info = tls.read_certificate(cert.public_bytes(serialization.Encoding.DER))
    assert (info.issuer, info.subject) == ("CN=deployment CA", "CN=server")
    assert info.ip_addresses == ("127.0.0.1", "fd00::5") and info.dns_names == ("a.example", "b.example")
    assert info.not_after == cert.not_valid_after_utc and info.not_before == cert.not_valid_before_utc
