"""Verify an MLflow server's TLS certificate and, when it does not verify, say why: another CA, an
expired certificate, or an address the certificate does not name (and the names it does carry).

    problem = verify(host, port, ssl_context(ca_file), timeout)   # None: it verifies
    info = read_certificate(der)                                   # names, issuer, expiry of a DER certificate

Only the standard library (a clean `pip install` of orm-pack has no cryptography package): the few fields
needed are read from the certificate's DER with a small reader.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass

WARN_DAYS = 30  # doctor warns, and local up renews its certificate, this close to expiry
CA_ENV = "MLFLOW_TRACKING_SERVER_CERT_PATH"  # MLflow's own setting: the CA bundle its client verifies with

# OpenSSL's verify codes (x509_vfy.h)
_NOT_YET_VALID, _EXPIRED = 9, 10
_UNKNOWN_ISSUER = {2, 18, 19, 20, 21}  # no issuer cert, self-signed (leaf / in chain), local issuer, leaf only
_NAME_MISMATCH = {62, 63, 64}          # host name, e-mail, IP address


def ssl_context(ca_file: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """Verifies with the CA in ca_file only, else with the system's trusted CAs; verify=False checks nothing."""
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


def trust_source(ca_file: str | None) -> str:
    return f"the CA in {ca_file}" if ca_file else "the system's trusted CAs"


# ------------------------------------------------------------------ reading a certificate
@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()

    def names(self) -> str:
        names = [*self.ip_addresses, *self.dns_names]
        return ", ".join(names) if names else f"no addresses or host names (subject {self.subject})"

    def days_left(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.timezone.utc)
        return (self.not_after - now).total_seconds() / 86400

    def self_signed(self) -> bool:
        return self.subject == self.issuer


def _tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos:pos + length], pos + length


def _items(data: bytes) -> list[tuple[int, bytes]]:
    items, pos = [], 0
    while pos < len(data):
        tag, value, pos = _tlv(data, pos)
        items.append((tag, value))
    return items


def _oid(value: bytes) -> str:
    arcs, current = [], 0
    for byte in value:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(current)
            current = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


_ATTRIBUTES = {"2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.6": "C"}


def _name(value: bytes) -> str:
    parts = []
    for _, rdn in _items(value):
        for _, attribute in _items(rdn):
            (_, oid), (_, text) = _items(attribute)[:2]
            label = _ATTRIBUTES.get(_oid(oid))
            if label:
                parts.append(f"{label}={text.decode(errors='replace')}")
    return ", ".join(parts) or "(empty name)"


def _time(tag: int, value: bytes) -> dt.datetime:
    text = value.decode()
    if tag == 0x17:  # UTCTime, YYMMDDHHMMSSZ
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    return dt.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.timezone.utc)


def read_certificate(der: bytes) -> CertificateInfo:
    """Subject, issuer, validity and subject alternative names of a DER-encoded X.509 certificate."""
    certificate = _items(der)[0][1]
    tbs = _items(_items(certificate)[0][1])
    if tbs[0][0] == 0xA0:  # [0] version
        tbs = tbs[1:]
    _serial, _algorithm, (_, issuer), (_, validity), (_, subject) = tbs[:5]
    (before_tag, before), (after_tag, after) = _items(validity)[:2]
    dns, ips = [], []
    for tag, value in tbs[5:]:
        if tag != 0xA3:  # [3] extensions
            continue
        for _, extension in _items(_items(value)[0][1]):
            fields = _items(extension)
            if _oid(fields[0][1]) != "2.5.29.17":  # subjectAltName
                continue
            for kind, name in _items(_items(fields[-1][1])[0][1]):
                if kind == 0x82:
                    dns.append(name.decode(errors="replace"))
                elif kind == 0x87 and len(name) in (4, 16):
                    ips.append(str(ipaddress.ip_address(name)))
    return CertificateInfo(_name(subject), _name(issuer), _time(before_tag, before), _time(after_tag, after),
                           tuple(dns), tuple(ips))


def read_pem(path) -> CertificateInfo:
    with open(path) as handle:
        return read_certificate(ssl.PEM_cert_to_DER_cert(handle.read()))


# ------------------------------------------------------------------ what a server presents
@dataclass(frozen=True)
class Presented:
    version: str
    cipher: str
    certificate: CertificateInfo | None   # None when its DER could not be read


def presented(host: str, port: int, timeout: float) -> Presented:
    """The TLS version, cipher and certificate the server shows, without verifying anything (OSError when
    no TLS connection can be made)."""
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            ssl_context(verify=False).wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
        version, cipher = tls.version(), tls.cipher()[0]
    try:
        info = read_certificate(der) if der else None
    except (ValueError, IndexError):
        info = None
    return Presented(version, cipher, info)


@dataclass(frozen=True)
class Problem:
    kind: str      # "issuer", "expired", "not-yet-valid", "name" or "other"
    detail: str
    fix: str


def _date(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def verify(host: str, port: int, context: ssl.SSLContext, timeout: float, ca_file: str | None = None,
           shown: Presented | None = None) -> Problem | None:
    """None when a handshake with `context` verifies the certificate and `host`; else what does not match."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return None
    except ssl.SSLCertVerificationError as error:
        return explain(error, host, ca_file, shown or presented_or_none(host, port, timeout))


def presented_or_none(host: str, port: int, timeout: float) -> Presented | None:
    try:
        return presented(host, port, timeout)
    except OSError:
        return None


def explain(error: ssl.SSLCertVerificationError, host: str, ca_file: str | None,
            shown: Presented | None) -> Problem:
    info = shown.certificate if shown else None
    source = trust_source(ca_file)
    code = getattr(error, "verify_code", None)
    if code in _UNKNOWN_ISSUER:
        what = ("a self-signed certificate" + (f" ({info.subject})" if info else "")
                if code == 18 or (info and info.self_signed()) else
                "a certificate issued by " + (info.issuer if info else "another CA"))
        return Problem("issuer", f"the server shows {what}, not one from {source}",
                       "another server answers at this address, or the CA file is not this deployment's: get its CA "
                       f"again (orm-pack connect) and point {CA_ENV} or --ca-file at it")
    if code == _EXPIRED:
        when = f" on {_date(info.not_after)}" if info else ""
        return Problem("expired", f"the certificate expired{when}",
                       "the server must renew its certificate (orm-pack local up renews its own at start; OCI "
                       "Certificates renews the stack's)")
    if code == _NOT_YET_VALID:
        when = f" before {_date(info.not_before)}" if info else " yet"
        return Problem("not-yet-valid", f"the certificate is not valid{when}", "check this machine's clock")
    if code in _NAME_MISMATCH:
        names = info.names() if info else "other names"
        return Problem("name", f"the certificate does not name {host}: it names {names}",
                       "connect by an address the certificate names, or have it issued for this one")
    return Problem("other", f"the certificate does not verify with {source}: {error.verify_message or error}",
                   f"point {CA_ENV} or --ca-file at the deployment's CA")
