"""The tracking entrypoint verifies MySQL's certificate, its chain and the address it names, before it
creates anything: a server it cannot verify stops it at once with one line saying which server, which CA
file and what did not match.

On OCI the DB system shows a certificate of our own: HeatWave supports "bring your own certificate"
(the DB system's secure_connections with certificate_generation_type BYOC and the OCID of a certificate in
OCI Certificates, which the DB system reads with its resource principal through a policy on
leaf-certificate-family), so the stack's CA issues it for the DB system's private IP (IP SAN and common name),
the address in MLFLOW_DB_HOST. Here the lane's MariaDB stands in for it: a certificate from the lane's CA
for 127.0.0.1; it answers on 127.0.0.2 too, where that certificate names another address than the client's."""
import subprocess
import time

import pytest

from dataplane.stacks import DB_PASSWORD, RUNTIME
from harness.certificates import Authority
from orm_pack.local.ports import free_port
from orm_pack.local.services import TrackingConfig, tracking_argv, tracking_env

pytestmark = pytest.mark.dataplane


def _migrate(mariadb, tmp_path, name: str, host: str, ca_file: str | None) -> subprocess.CompletedProcess:
    """The entrypoint's migrate mode (what a rollout runs first) on database and user `name`, as the
    administrator, trusting `ca_file` (None: the system's trust store)."""
    settings = dict(mariadb.client_env(), MLFLOW_DB_HOST=host, MLFLOW_DB_NAME=name, MLFLOW_DB_USER=name,
                    MLFLOW_DB_PASSWORD=DB_PASSWORD, MYSQL_ADMIN_USER=mariadb.admin_user,
                    MYSQL_ADMIN_PASSWORD=mariadb.admin_password, MLFLOW_DB_WAIT_SECONDS="30", MLFLOW_DB_SSL_CA=ca_file)
    env = tracking_env(TrackingConfig(port=free_port(), artifacts_destination=str(tmp_path / "artifacts"),
                                      extra_env=tuple((k, v) for k, v in settings.items() if v is not None)))
    env.pop("MLFLOW_BACKEND_STORE_URI", None)
    return subprocess.run([*tracking_argv(RUNTIME), "migrate"], env=env, capture_output=True, text=True, timeout=120)


def _refused(mariadb, result, name: str, started: float) -> str:
    """The entrypoint stopped at once (no retrying a certificate that will not change), made no database
    and no user; returns init_db's one ERROR line."""
    assert result.returncode != 0, result.stderr
    assert time.monotonic() - started < 20, "a certificate that does not verify was retried"
    assert "starting: mlflow" not in result.stderr and "migrate: the database is ready" not in result.stderr
    with mariadb.admin() as connection, connection.cursor() as cursor:
        cursor.execute("SHOW DATABASES LIKE %s", (name,))
        assert not cursor.fetchall(), f"database {name} was created"
        cursor.execute("SELECT User FROM mysql.user WHERE User = %s", (name,))
        assert not cursor.fetchall(), f"user {name} was created"
    errors = [line for line in result.stderr.splitlines() if "init_db: ERROR" in line]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("trusted", ["another-ca", "system-store"])
def test_a_mysql_certificate_from_another_ca_is_refused(mariadb, tmp_path, trusted):
    """MLFLOW_DB_SSL_CA names a CA that did not issue the server's certificate, or is unset and the system's
    trust store (public CAs) decides: either way the certificate does not chain to what the client trusts."""
    ca_file = Authority("someone else's CA").write(tmp_path / "other-ca.pem") if trusted == "another-ca" else None
    name = f"tls_{trusted.replace('-', '_')}"
    started = time.monotonic()
    result = _migrate(mariadb, tmp_path, name, mariadb.host, ca_file)
    line = _refused(mariadb, result, name, started)
    assert f"MySQL at {mariadb.host}:{mariadb.port}" in line
    if ca_file:
        assert f"does not verify with the CA in {ca_file} (MLFLOW_DB_SSL_CA)" in line
    else:
        assert "does not verify with the system's trust store (MLFLOW_DB_SSL_CA is not set)" in line
    assert "it was not issued by that CA -> set MLFLOW_DB_SSL_CA to the CA that issued the DB system's" in line


def test_a_mysql_certificate_for_another_address_is_refused(mariadb, tmp_path):
    """The right CA, but the certificate names 127.0.0.1 while the client asked 127.0.0.2: anyone with a
    certificate from the CA for another address (another DB system) could stand in for the database."""
    name = "tls_wrong_address"
    started = time.monotonic()
    result = _migrate(mariadb, tmp_path, name, mariadb.other_address, mariadb.ca_file)
    line = _refused(mariadb, result, name, started)
    assert f"MySQL at {mariadb.other_address}:{mariadb.port}" in line
    assert f"does not verify with the CA in {mariadb.ca_file} (MLFLOW_DB_SSL_CA)" in line
    assert f"it does not name {mariadb.other_address}, the address in MLFLOW_DB_HOST" in line
