"""The certificate authority of `orm-pack local up`: made once in the state directory (its key readable by
you only; it never leaves this machine), and a certificate for the proxy from it, for 127.0.0.1, ::1,
localhost and the address the proxy listens on. Clients verify with STATE_DIR/ca.pem
(MLFLOW_TRACKING_SERVER_CERT_PATH); a browser trusts it once it is imported.

The CA may only issue for loopback and private addresses and for localhost (a name constraint), so a copy
of its key could not pose as any other site to a browser that trusts it. Made with the openssl command
(the package does not depend on a cryptography library)."""
from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

from orm_pack.errors import UserError
from orm_pack.local.state import StateDir
from orm_pack.mlflow_api import tls

CA_DAYS = 3650
SERVER_DAYS = 397          # what browsers accept from a public CA; a local root would be allowed more
RENEW_DAYS = tls.WARN_DAYS  # the server certificate is renewed at `up` this close to its expiry
LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
# where the CA may issue: loopback, private and link-local networks, and localhost
PERMITTED_NETWORKS = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                      "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10")
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")


def server_names(listen_address: str) -> tuple[str, ...]:
    """The names the proxy's certificate carries: the loopback ones and the address it listens on.
    Refuses an address the local CA may not issue for."""
    if listen_address in WILDCARD_ADDRESSES or listen_address in LOOPBACK_NAMES:
        return LOOPBACK_NAMES
    try:
        address = ipaddress.ip_address(listen_address)
    except ValueError:
        raise UserError(f"--listen-address must be an IP address (got {listen_address!r}): the local CA's "
                        "certificate names addresses, and localhost") from None
    if not any(address in ipaddress.ip_network(network) for network in PERMITTED_NETWORKS):
        raise UserError(f"--listen-address {listen_address}: the local CA issues certificates for loopback and "
                        f"private addresses only ({', '.join(PERMITTED_NETWORKS)})")
    return LOOPBACK_NAMES + (str(address),)


def ensure(state: StateDir, names: tuple[str, ...] = LOOPBACK_NAMES) -> bool:
    """Makes the CA when there is none (or it is about to expire), and the server certificate when there is
    none, it is not from this CA, lacks one of `names`, or expires within RENEW_DAYS. True when anything
    was made."""
    openssl = shutil.which("openssl")
    made = False
    if not _valid_for(state.ca_file, RENEW_DAYS) or not state.ca_key_file.is_file():
        _require(openssl)
        _make_ca(openssl, state)
        made = True
    if made or not _server_ok(openssl, state, names):
        _require(openssl)
        _make_server(openssl, state, names)
        made = True
    return made


def _require(openssl: str | None) -> None:
    if not openssl:
        raise UserError("openssl is needed to create the local CA and the proxy's certificate: install openssl")


def _valid_for(path: Path, days: float) -> bool:
    try:
        return tls.read_pem(path).days_left() > days
    except (OSError, ValueError, IndexError):
        return False


def _server_ok(openssl: str | None, state: StateDir, names: tuple[str, ...]) -> bool:
    if not (state.server_key_file.is_file() and _valid_for(state.server_cert_file, RENEW_DAYS)):
        return False
    info = tls.read_pem(state.server_cert_file)
    if not set(names) <= set(info.ip_addresses) | set(info.dns_names):
        return False
    try:  # the key is the certificate's
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(state.server_cert_file,
                                                                           state.server_key_file)
    except (OSError, ssl.SSLError):
        return False
    if not openssl:
        return True
    # and it is from this CA
    result = subprocess.run([openssl, "verify", "-CAfile", str(state.ca_file), str(state.server_cert_file)],
                            capture_output=True, text=True, check=False)
    return result.returncode == 0


def _run(argv: list[str], stdin: bytes | None = None) -> bytes:
    result = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        raise UserError(f"openssl failed ({' '.join(argv[:2])}): {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.replace(temporary, path)


def _write_public(path: Path, content: bytes) -> None:
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(content)
    temporary.chmod(0o644)
    os.replace(temporary, path)


def _new_key(openssl: str) -> bytes:
    return _run([openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])


def _config(names: tuple[str, ...] = ()) -> str:
    permitted = ["permitted;DNS.0 = localhost"]
    for index, network in enumerate(PERMITTED_NETWORKS):
        net = ipaddress.ip_network(network)
        permitted.append(f"permitted;IP.{index} = {net.network_address}/{net.netmask}")
    alt = [f"{'IP' if _is_ip(name) else 'DNS'}.{index} = {name}" for index, name in enumerate(names)]
    return "\n".join([
        "[req]", "distinguished_name = dn", "prompt = no", "[dn]", "CN = orm-pack local",
        "[ca]", "basicConstraints = critical, CA:TRUE, pathlen:0", "keyUsage = critical, keyCertSign, cRLSign",
        "subjectKeyIdentifier = hash", "nameConstraints = critical, @constraints",
        "[constraints]", *permitted,
        "[server]", "basicConstraints = critical, CA:FALSE", "keyUsage = critical, digitalSignature",
        "extendedKeyUsage = serverAuth", "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid",
        *(["subjectAltName = @names", "[names]", *alt] if alt else []), ""])


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _make_ca(openssl: str, state: StateDir) -> None:
    key = _new_key(openssl)
    with tempfile.TemporaryDirectory(prefix="orm-pack-ca-") as work:
        config, key_file = Path(work) / "openssl.cnf", Path(work) / "ca.key"
        config.write_text(_config())
        _write_private(key_file, key)
        subject = f"/O=orm-pack local/CN=orm-pack local CA {socket.gethostname()[:40]} {secrets.token_hex(4)}"
        cert = _run([openssl, "req", "-x509", "-new", "-config", str(config), "-extensions", "ca", "-key",
                     str(key_file), "-subj", subject, "-days", str(CA_DAYS), "-sha256",
                     "-set_serial", f"0x{secrets.token_hex(16)}"])
    _write_private(state.ca_key_file, key)
    _write_public(state.ca_file, cert)


def _make_server(openssl: str, state: StateDir, names: tuple[str, ...]) -> None:
    key = _new_key(openssl)
    with tempfile.TemporaryDirectory(prefix="orm-pack-tls-") as work:
        config, key_file = Path(work) / "openssl.cnf", Path(work) / "server.key"
        config.write_text(_config(names))
        _write_private(key_file, key)
        request = _run([openssl, "req", "-new", "-config", str(config), "-key", str(key_file),
                        "-subj", "/O=orm-pack local/CN=localhost"])
        cert = _run([openssl, "x509", "-req", "-CA", str(state.ca_file), "-CAkey", str(state.ca_key_file),
                     "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(SERVER_DAYS), "-sha256",
                     "-extfile", str(config), "-extensions", "server"], stdin=request)
    _write_private(state.server_key_file, key)
    _write_public(state.server_cert_file, cert)
