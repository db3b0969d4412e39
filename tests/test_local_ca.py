"""`orm-pack local up`'s own CA: made once (its key readable by you only), kept across restarts; the proxy's
certificate from it names 127.0.0.1, ::1 and localhost (and the listen address) and is made again within 30
days of its expiry, or when it does not match; the CA may issue for loopback and private addresses only. The
serving supervisor verifies the tracking server with that CA."""
import datetime as dt
import subprocess

import pytest
from cryptography import x509

from harness.tools import require_binary
from orm_pack.errors import UserError
from orm_pack.local import certificates
from orm_pack.local.credentials import Credentials
from orm_pack.local.services import ServingConfig, serving_env
from orm_pack.local.state import StateDir


def _cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


@pytest.fixture
def state(tmp_path):
    require_binary("openssl", how="apt-get install openssl")
    state = StateDir(tmp_path / "state")
    state.create()
    return state


def test_the_ca_is_made_once_and_the_proxy_certificate_verifies_with_it(state):
    assert certificates.ensure(state)
    assert state.ca_key_file.stat().st_mode & 0o777 == 0o600
    assert state.server_key_file.stat().st_mode & 0o777 == 0o600
    ca, server = _cert(state.ca_file), _cert(state.server_cert_file)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert server.issuer == ca.subject and _names(server) == {"127.0.0.1", "::1", "localhost"}
    server.verify_directly_issued_by(ca)
    check = subprocess.run(["openssl", "verify", "-CAfile", str(state.ca_file), "-verify_ip", "127.0.0.1",
                            str(state.server_cert_file)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr

    before = (state.ca_file.read_bytes(), state.server_cert_file.read_bytes())
    assert not certificates.ensure(state)  # a restart keeps both
    assert (state.ca_file.read_bytes(), state.server_cert_file.read_bytes()) == before


def test_the_proxy_certificate_is_renewed_within_30_days_of_expiry_and_the_ca_kept(state, monkeypatch):
    monkeypatch.setattr(certificates, "SERVER_DAYS", 31)
    certificates.ensure(state)
    ca, first = state.ca_file.read_bytes(), _cert(state.server_cert_file)
    assert not certificates.ensure(state, certificates.server_names("127.0.0.1"))  # 31 days left: kept
    assert _cert(state.server_cert_file).serial_number == first.serial_number
    monkeypatch.setattr(certificates, "SERVER_DAYS", 29)
    state.server_cert_file.unlink()
    certificates.ensure(state)  # a certificate with 29 days left
    short = _cert(state.server_cert_file)
    assert short.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) < dt.timedelta(days=30)
    monkeypatch.setattr(certificates, "SERVER_DAYS", 397)
    assert certificates.ensure(state)  # within 30 days of expiry: renewed
    renewed = _cert(state.server_cert_file)
    assert renewed.serial_number != short.serial_number
    assert renewed.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=390)
    assert state.ca_file.read_bytes() == ca


def test_a_certificate_not_from_the_ca_or_without_the_listen_address_is_made_again(state, tmp_path):
    certificates.ensure(state)
    other = StateDir(tmp_path / "other")
    other.create()
    certificates.ensure(other)
    state.server_cert_file.write_bytes(other.server_cert_file.read_bytes())
    state.server_key_file.write_bytes(other.server_key_file.read_bytes())
    assert certificates.ensure(state)
    _cert(state.server_cert_file).verify_directly_issued_by(_cert(state.ca_file))
    assert certificates.ensure(state, certificates.server_names("192.168.7.9"))
    assert _names(_cert(state.server_cert_file)) == {"127.0.0.1", "::1", "localhost", "192.168.7.9"}


def test_the_ca_issues_for_loopback_and_private_addresses_only(state):
    assert certificates.server_names("0.0.0.0") == ("127.0.0.1", "::1", "localhost")
    for address in ("203.0.113.7", "mlflow.example.com"):
        with pytest.raises(UserError):
            certificates.server_names(address)
    certificates.ensure(state)
    constraints = _cert(state.ca_file).extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical and x509.DNSName("localhost") in constraints.value.permitted_subtrees


def test_the_serving_supervisor_verifies_the_tracking_server_with_the_ca(state):
    config = ServingConfig(port=1, tracking_uri="https://127.0.0.1:8443", credentials=Credentials("mlflow", "pw"),
                           model_name="m", tracking_ca_file=str(state.ca_file))
    env = serving_env(config, base={"PATH": "/usr/bin", "MLFLOW_TRACKING_INSECURE_TLS": "true"})
    assert env["MLFLOW_TRACKING_SERVER_CERT_PATH"] == str(state.ca_file)
    assert "MLFLOW_TRACKING_INSECURE_TLS" not in env
