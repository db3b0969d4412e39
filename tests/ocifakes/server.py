"""One loopback server playing, for one instance, the OCI endpoints its runtime reaches:

  /opc/v2/...                       instance metadata (v2: `Authorization: Bearer Oracle` required)
  POST /v1/x509                     federation: the instance certificate, signed with its key, for a token
  GET /20190301/secretbundles/{id}  Vault secrets (and POST .../secretbundles/actions/getByName)
  /n/{namespace}/b/{bucket}/...     Object Storage: objects, listing, multipart uploads, pre-authenticated
                                    requests (PARs)
  /p/{token}/n/{namespace}/b/...    Object Storage through a PAR: no signature, the token is the credential
  GET /20210224/certificateBundles/{id}, /20210224/certificateAuthorityBundles/{id}
                                    Certificates: a private CA's certificates and its own (certificates.py)

Service calls must be signed with the session key named in the token (keyId "ST$<token>"), which an
instance gets at federation and a resource (a notebook session) finds in its environment (resource
principal 2.2: `resource_principal_env`); a call
that carries anything else (an API key, a customer secret key) is refused. As in OCI, a principal sees
only what a policy grants it: anything else answers 404 NotAuthorizedOrNotFound, the same as a
secret or bucket that does not exist. A laptop's API key (`add_api_key`) is a principal like an
instance, with grants of its own.

Object Storage keeps objects and multipart parts as files in a directory of its own (a 5 GB upload costs
disk, not memory), serves ranges (`Range: bytes=a-b`, 206) and logs each request's size and the client's
port (`transfers`). The rules it enforces, from OCI's documentation:

- Multipart uploads (Object Storage, "Using Multipart Uploads"; API UploadPart, CommitMultipartUpload,
  AbortMultipartUpload, ListMultipartUploadParts): parts are numbered 1 to 10,000 and a part sent again
  under the same number replaces it; a commit names each part with the ETag its upload returned and
  fails (400) on a missing part or another ETag; an abort discards every part; an upload committed or
  aborted is gone (404 NoSuchUpload).
- Pre-authenticated requests (API CreatePreauthenticatedRequest, DeletePreauthenticatedRequest; "Using
  Pre-Authenticated Requests"): creating or deleting one needs PAR_MANAGE on the bucket besides the
  object grant (`grant(par_buckets=...)`; otherwise 404 NotAuthorizedOrNotFound); accessType is one of
  ObjectRead, ObjectWrite, ObjectReadWrite (objectName required: that object only), AnyObjectRead,
  AnyObjectWrite, AnyObjectReadWrite (the whole bucket); timeExpires must lie in the future (400). The
  URL (`accessUri`) is shown once; a request through it after its expiry or deletion, or outside its
  object or access type, is refused (404 NotAuthorizedOrNotFound, as for a token that never existed).
- Multipart through a PAR ("Pre-Authenticated Request Object URLs", Putting a Large Object): a PUT of
  the PAR's object URL with `opc-multipart: true` starts an upload and answers its own `accessUri`
  (`/p/<token>/n/<ns>/b/<bucket>/u/<object>/id/<uploadId>/`); a PUT of that URI plus a part number
  uploads a part, a POST of it commits the parts uploaded, a DELETE aborts. That URI lives as long as
  the PAR that made it (its expiry, its deletion); the upload itself is an ordinary multipart upload, so
  the API lists, commits and aborts it by its uploadId too.
"""
import base64
import hashlib
import json
import os
import re
import secrets as token_source
import shutil
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness import loopback, ocids
from ormfake import signature

from .certificates import PUBLIC_ONLY, WITH_PRIVATE_KEY, PrivateCA
from .pki import CertificateAuthority

FEDERATION_SIGNED = ("date", "(request-target)", "content-length", "content-type", "x-content-sha256")
TOKEN_SECONDS = 3600
VAULT = ocids.mint("vault", "the fake's vault")  # the vault secrets are added to unless another is named


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Grants:
    secrets: set = field(default_factory=set)
    buckets: set = field(default_factory=set)
    par_buckets: set = field(default_factory=set)     # buckets with PAR_MANAGE
    certificates: dict = field(default_factory=dict)   # certificate OCID -> the bundle types granted
    authorities: set = field(default_factory=set)      # CA OCIDs whose bundle may be read
    logs: set = field(default_factory=set)             # custom logs it may write (use log-content)
    metric_namespaces: set = field(default_factory=set)  # custom metric namespaces it may post to (use metrics)


@dataclass
class StoredObject:
    """An object's bytes, in a file of the fake's directory; a committed multipart upload keeps its parts'
    files (`parts`, in order: a commit costs no copy, as OCI's does not) and has no MD5 of the whole."""
    path: Path
    size: int
    md5: str | None          # hex MD5 of the bytes (also the ETag); None for a multipart object
    parts: tuple = ()        # the part files of a multipart object, in order
    etag: str = ""

    @property
    def files(self) -> list[Path]:
        return list(self.parts) or [self.path]

    def read(self) -> bytes:
        return b"".join(f.read_bytes() for f in self.files)

    def stream(self, start: int, length: int):
        """`length` bytes from offset `start`, in chunks of at most 1 MiB."""
        for file in self.files:
            size = file.stat().st_size
            if start >= size:
                start -= size
                continue
            with open(file, "rb") as source:
                source.seek(start)
                start = 0
                while length > 0 and (chunk := source.read(min(length, 1 << 20))):
                    length -= len(chunk)
                    yield chunk
            if length <= 0:
                return

    def delete(self) -> None:
        for file in self.files:
            file.unlink(missing_ok=True)


@dataclass
class Upload:
    bucket: str
    name: str
    directory: Path
    parts: dict = field(default_factory=dict)  # part number -> StoredObject


PAR_ACCESS_TYPES = ("ObjectRead", "ObjectWrite", "ObjectReadWrite", "AnyObjectRead", "AnyObjectWrite",
                    "AnyObjectReadWrite")


@dataclass
class Par:
    id: str
    token: str
    bucket: str
    access_type: str
    object_name: str | None
    expires: float
    upload_id: str | None = None      # an upload's access URI (opc-multipart): that upload only
    parent: str | None = None         # ... and the PAR that made it, whose life it shares

    def allows(self, write: bool) -> bool:
        return ("Write" if write else "Read") in self.access_type


class _Cut(Exception):
    """The connection drops before an answer (a network failure mid-upload)."""


class _Length:
    """Stands for a streamed body in the signature check: its length only (the body is not signed)."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self):
        return self.size


class InstanceCloud:
    def __init__(self, namespace: str = "fakens", region_key: str = "iad",
                 tenancy: str = "ocid1.tenancy.oc1..aaaaaaaazwwwee73ct4kxkwgblayn6glb67vamagy4bgafzf4ojk3xfhglpq",
                 compartment: str = "ocid1.compartment.oc1..aaaaaaaa3a5v7wcfmtcuqkx6owozoyddmkvggpmlxpy7rkbkwpjqndjwuoxq"):
        self.namespace = namespace
        self.region_key = region_key
        self.ca = CertificateAuthority(tenancy)
        self.instance = self.ca.issue(ocids.mint("instance", uuid.uuid4().hex, region_key), compartment)
        self.token_key = os.urandom(32)
        self.lock = threading.Lock()
        self.secrets: dict[str, str] = {}
        self.secret_names: dict[tuple[str, str], str] = {}  # (vault OCID, secret name) -> secret OCID
        self.grants: dict[str, Grants] = defaultdict(Grants)
        self.buckets: dict[str, dict[str, StoredObject]] = {}
        self.private_cas: dict[str, PrivateCA] = {}
        self.uploads: dict[str, Upload] = {}
        self.commits: list[tuple[str, int]] = []  # (object name, number of parts) of committed multipart uploads
        self.aborts: list[str] = []               # object names of aborted multipart uploads
        self.requests: list[tuple[str, str, str, int]] = []  # (method, path, key kind, status)
        # (method, path, key kind, status, bytes received, client port) of every request
        self.transfers: list[tuple[str, str, str, int, int, int]] = []
        self.pars: dict[str, Par] = {}            # token -> PAR (and upload access URIs)
        self.api_keys: dict[str, tuple[object, str]] = {}  # keyId -> (public key, principal)
        self.cut_parts: set[int] = set()          # part numbers whose upload through a PAR loses its connection
        self.directory = Path(tempfile.mkdtemp(prefix="ocifake-objects-"))
        self.logs: dict[str, list[dict]] = {}     # custom log OCID -> entries accepted (with their batch's fields)
        self.metrics: list[dict] = []             # metric streams accepted by PostMetricData, as posted
        self.tokens_issued = 0
        self.server = None

    # ------------------------------------------------------------------------- set-up
    def add_secret(self, name: str, value: str, ocid: str | None = None, vault: str = VAULT) -> str:
        """A secret (or a new current version of one) called `name` in `vault`; `ocid` keeps the OCID a plan
        gave it."""
        ocid = ocid or ocids.mint("vaultsecret", f"{vault}/{name}", self.region_key)
        self.secrets[ocid] = value
        self.secret_names[(vault, name)] = ocid
        return ocid

    def grant(self, secrets=(), buckets=(), authorities=(), instance: str | None = None, par_buckets=()) -> None:
        grants = self.grants[instance or self.instance.instance_ocid]
        grants.secrets.update(secrets)
        grants.buckets.update(buckets)
        grants.authorities.update(authorities)
        grants.par_buckets.update(par_buckets)

    def add_log(self, name: str) -> str:
        """A custom log of OCI Logging; the instance may write it once granted (`grant_log`)."""
        ocid = ocids.mint("log", name, self.region_key)
        self.logs[ocid] = []
        return ocid

    def grant_log(self, log_ocid: str, instance: str | None = None) -> None:
        self.grants[instance or self.instance.instance_ocid].logs.add(log_ocid)

    def add_api_key(self, key_id: str, public_key, principal: str) -> None:
        """A user's API key (keyId `<tenancy>/<user>/<fingerprint>`): its calls act as `principal`, whose
        grants `grant(instance=principal)` gives."""
        self.api_keys[key_id] = (public_key, principal)

    def stored(self, bucket: str, name: str) -> bytes:
        return self.buckets[bucket][name].read()

    def part_files(self) -> list[Path]:
        """Every part file of every upload not yet committed or aborted."""
        return sorted(p for p in (self.directory / "uploads").rglob("*") if p.is_file()) \
            if (self.directory / "uploads").exists() else []

    def add_private_ca(self, name: str) -> PrivateCA:
        ca = PrivateCA(name, self.region_key)
        self.private_cas[ca.ocid] = ca
        return ca

    def grant_certificate(self, certificate_ocid: str, bundle_types=(PUBLIC_ONLY, WITH_PRIVATE_KEY),
                          authorities=(), instance: str | None = None) -> None:
        grants = self.grants[instance or self.instance.instance_ocid]
        grants.certificates.setdefault(certificate_ocid, set()).update(bundle_types)
        grants.authorities.update(authorities)

    def create_bucket(self, name: str) -> None:
        self.buckets.setdefault(name, {})

    def start(self) -> "InstanceCloud":
        self.server = loopback.serve(type("Handler", (_Handler,), {"cloud": self}))
        return self

    def stop(self) -> None:
        if self.server:
            loopback.stop(self.server)
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def runtime_env(self) -> dict:
        """What a process on the instance needs to reach these endpoints instead of OCI's."""
        return {"OCI_METADATA_BASE_URL": f"{self.url}/opc/v2",
                "MLFLOW_OCI_FEDERATION_ENDPOINT": f"{self.url}/v1/x509",
                "MLFLOW_OCI_SECRETS_ENDPOINT": self.url,
                "MLFLOW_OCI_OBJECT_STORAGE_ENDPOINT": self.url,
                "MLFLOW_OCI_CERTIFICATES_ENDPOINT": self.url,
                "MLFLOW_OCI_LOGGING_ENDPOINT": self.url,
                "MLFLOW_OCI_MONITORING_ENDPOINT": self.url,
                "NO_PROXY": "127.0.0.1,localhost"}

    def resource_principal_env(self, directory: Path, resource_ocid: str) -> dict:
        """What OCI puts in a resource's environment (a Data Science notebook session: resource principal
        version 2.2): a session token for `resource_ocid` and its private key, as files in `directory`."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        claims = {"exp": int(time.time()) + TOKEN_SECONDS, "sub": resource_ocid,
                  "session_key": base64.b64encode(public_der).decode()}
        token, pem = directory / "rpst", directory / "rp.pem"
        token.write_text(jwt.encode(claims, self.token_key, algorithm="HS256"))
        pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        pem.chmod(0o600)
        return {"OCI_RESOURCE_PRINCIPAL_VERSION": "2.2", "OCI_RESOURCE_PRINCIPAL_RPST": str(token),
                "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM": str(pem), "OCI_RESOURCE_PRINCIPAL_REGION": "us-ashburn-1",
                "MLFLOW_OCI_SECRETS_ENDPOINT": self.url, "MLFLOW_OCI_CERTIFICATES_ENDPOINT": self.url,
                "NO_PROXY": "127.0.0.1,localhost"}

    # ------------------------------------------------------------------------- federation
    def federate(self, handler, body: bytes) -> dict:
        try:
            request = json.loads(body)
            certificate = x509.load_der_x509_certificate(base64.b64decode(request["certificate"]))
            session_key = serialization.load_der_public_key(base64.b64decode(request["publicKey"]))
        except (ValueError, KeyError, TypeError):
            raise Refused(400, "InvalidParameter", "certificate and publicKey must be base64 DER") from None
        if not self.ca.issued(certificate):
            raise Refused(401, "NotAuthenticated", "the certificate was not issued by the instance CA")
        fingerprint = ":".join(f"{b:02X}" for b in certificate.fingerprint(hashes.SHA1()))
        key_id = f"{self.ca.tenancy_ocid}/fed-x509/{fingerprint}"
        try:
            signature.verify("POST", handler.path, handler.headers, body, {key_id: certificate.public_key()},
                             generic_headers=FEDERATION_SIGNED)
        except signature.SignatureError as exc:
            raise Refused(401, "NotAuthenticated", str(exc)) from None
        instance = next(a.value for a in certificate.subject if str(a.value).startswith("opc-instance:"))
        public_der = session_key.public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        claims = {"exp": int(time.time()) + TOKEN_SECONDS, "sub": instance.split(":", 1)[1],
                  "session_key": base64.b64encode(public_der).decode()}
        with self.lock:
            self.tokens_issued += 1
        return {"token": jwt.encode(claims, self.token_key, algorithm="HS256")}

    def principal(self, handler, body: bytes, body_signed: bool) -> tuple[str, str]:
        """(key kind, instance OCID) of a signed service call."""
        try:
            key_id = signature.parse_authorization(handler.headers.get("authorization", ""))["keyId"]
        except signature.SignatureError as exc:
            raise Refused(401, "NotAuthenticated", str(exc)) from None
        if key_id in self.api_keys:
            public_key, who = self.api_keys[key_id]
            try:
                signature.verify(handler.command, handler.path, handler.headers, body, {key_id: public_key},
                                 body_signed=body_signed)
            except signature.SignatureError as exc:
                raise Refused(401, "NotAuthenticated", str(exc)) from None
            return "api-key", who
        if not key_id.startswith("ST$"):
            raise Refused(401, "NotAuthenticated", "only instance- or resource-principal tokens are accepted here")
        try:
            claims = jwt.decode(key_id[3:], self.token_key, algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            raise Refused(401, "NotAuthenticated", f"bad token: {exc}") from None
        session_key = serialization.load_der_public_key(base64.b64decode(claims["session_key"]))
        try:
            signature.verify(handler.command, handler.path, handler.headers, body, {key_id: session_key},
                             body_signed=body_signed)
        except signature.SignatureError as exc:
            raise Refused(401, "NotAuthenticated", str(exc)) from None
        return "session-token", claims["sub"]

    # ------------------------------------------------------------------------- services
    def secret_bundle_by_name(self, instance: str, query: dict) -> dict:
        """GetSecretBundleByName: a secret name is unique within its vault only, so both are required."""
        if not query.get("secretName") or not query.get("vaultId"):
            raise Refused(400, "MissingParameter", "secretName and vaultId are required")
        ocid = self.secret_names.get((query["vaultId"], query["secretName"]), "")
        return self.secret_bundle(instance, ocid)

    def secret_bundle(self, instance: str, secret_ocid: str) -> dict:
        if secret_ocid not in self.grants[instance].secrets or secret_ocid not in self.secrets:
            raise Refused(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
        return {"secretId": secret_ocid, "versionNumber": 1, "stages": ["CURRENT", "LATEST"],
                "secretBundleContent": {"contentType": "BASE64",
                                        "content": base64.b64encode(self.secrets[secret_ocid].encode()).decode()}}

    def certificate_bundle(self, instance: str, certificate_ocid: str, query: dict) -> dict:
        bundle_type = query.get("certificateBundleType", PUBLIC_ONLY)
        if bundle_type not in (PUBLIC_ONLY, WITH_PRIVATE_KEY):
            raise Refused(400, "InvalidParameter", f"certificateBundleType must be {PUBLIC_ONLY} or {WITH_PRIVATE_KEY}")
        ca = next((ca for ca in self.private_cas.values() if certificate_ocid in ca.issued), None)
        if ca is None or bundle_type not in self.grants[instance].certificates.get(certificate_ocid, ()):
            raise Refused(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
        return ca.certificate_bundle(certificate_ocid, bundle_type)

    def authority_bundle(self, instance: str, authority_ocid: str) -> dict:
        if authority_ocid not in self.private_cas or authority_ocid not in self.grants[instance].authorities:
            raise Refused(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
        return self.private_cas[authority_ocid].authority_bundle()

    def put_logs(self, instance: str, log_ocid: str, body: bytes) -> None:
        """Logging ingestion's PutLogs (POST /20200831/logs/{logId}/actions/push), with the request's documented
        shape (loggingingestion.PutLogsDetails: specversion "1.0", logEntryBatches of entries with data and id,
        each batch with source and type) and rule: "Each entry should be less than 1 MB size" (LogEntry)."""
        if log_ocid not in self.logs or log_ocid not in self.grants[instance].logs:
            raise Refused(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
        try:
            details = json.loads(body)
        except ValueError:
            raise Refused(400, "InvalidParameter", "the body is not JSON") from None
        if details.get("specversion") != "1.0":
            raise Refused(400, "InvalidParameter", "specversion must be 1.0")
        batches = details.get("logEntryBatches")
        if not isinstance(batches, list) or not batches:
            raise Refused(400, "InvalidParameter", "logEntryBatches is required")
        accepted = []
        for batch in batches:
            if not all(isinstance(batch.get(k), str) and batch[k] for k in ("source", "type")):
                raise Refused(400, "InvalidParameter", "every batch needs a source and a type")
            entries = batch.get("entries")
            if not isinstance(entries, list) or not entries:
                raise Refused(400, "InvalidParameter", "every batch needs entries")
            for entry in entries:
                if not isinstance(entry.get("data"), str) or not isinstance(entry.get("id"), str):
                    raise Refused(400, "InvalidParameter", "every entry needs data and an id")
                if len(json.dumps(entry).encode()) >= 1024 * 1024:
                    raise Refused(400, "InvalidParameter", "a log entry must be less than 1 MB")
                try:
                    if entry.get("time") is not None:
                        _parse_time(entry["time"])
                except (TypeError, ValueError):
                    raise Refused(400, "InvalidParameter", "an entry's time must be an RFC 3339 date-time") from None
                accepted.append({**entry, "source": batch["source"], "type": batch["type"],
                                 "subject": batch.get("subject")})
        with self.lock:
            self.logs[log_ocid].extend(accepted)

    def post_metric_data(self, instance: str, body: bytes, now: float | None = None) -> dict:
        """Monitoring's PostMetricData (POST /20180401/metrics on telemetry-ingestion) with its documented rules
        (the API reference, PostMetricData and MetricDataDetails): at most 50 unique metric streams a call and
        1 to 20 dimensions each (refused with 400); a namespace starts with a letter and holds letters, digits
        and underscores; a name starts with a letter and holds letters, digits, dots, underscores, hyphens and
        dollar signs; a dimension key is printable ASCII without spaces (256 characters at most), a value 1 to
        512 characters; a datapoint's timestamp less than two hours in the past and less than 10 minutes in
        the future. A stream that breaks a rule is not posted and is listed in failedMetrics; the call answers 200."""
        now = time.time() if now is None else now
        try:
            streams = json.loads(body)["metricData"]
        except (ValueError, KeyError, TypeError):
            raise Refused(400, "InvalidParameter", "metricData is required") from None
        if not isinstance(streams, list) or not streams:
            raise Refused(400, "InvalidParameter", "metricData needs at least one metric")
        if len({json.dumps([m.get("namespace"), m.get("name"), m.get("dimensions")], sort_keys=True)
                for m in streams}) > 50:
            raise Refused(400, "InvalidParameter", "a call may post at most 50 unique metric streams")
        failed = []
        for metric in streams:
            dimensions = metric.get("dimensions") or {}
            if not 1 <= len(dimensions) <= 20:
                raise Refused(400, "InvalidParameter", "a metric needs 1 to 20 dimensions")
            problem = _metric_problem(metric, dimensions, now)
            if problem is None and metric.get("namespace") not in self.grants[instance].metric_namespaces:
                problem = "not authorized to post metrics in this namespace"
            if problem:
                failed.append({"metricData": metric, "message": problem})
            else:
                with self.lock:
                    self.metrics.append(metric)
        return {"failedMetricsCount": len(failed), "failedMetrics": failed}

    def bucket(self, instance: str, namespace: str, name: str) -> dict:
        if namespace != self.namespace or name not in self.buckets or name not in self.grants[instance].buckets:
            raise Refused(404, "BucketNotFound", f"Either the bucket named '{name}' does not exist in the namespace "
                          f"'{namespace}' or you are not authorized to access it")
        return self.buckets[name]


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


NOT_FOUND_PAR = ("NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
STREAMED = re.compile(r"^/(p/[^/]+/)?n/[^/]+/b/[^/]+/[ou]/")  # object and part bodies: to disk, never signed


METRIC_NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
METRIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._$-]*$")
DIMENSION_KEY = re.compile(r"^[!-~]{1,256}$")  # printable ASCII, no space


def _metric_problem(metric: dict, dimensions: dict, now: float) -> str | None:
    if not METRIC_NAMESPACE.match(str(metric.get("namespace", ""))):
        return "invalid namespace"
    if not METRIC_NAME.match(str(metric.get("name", ""))):
        return "invalid metric name"
    if not str(metric.get("compartmentId", "")).startswith(("ocid1.compartment.", "ocid1.tenancy.")):
        return "invalid compartmentId"
    for key, value in dimensions.items():
        if not DIMENSION_KEY.match(key) or not isinstance(value, str) or not 1 <= len(value) <= 512:
            return f"invalid dimension {key!r}"
    points = metric.get("datapoints") or []
    if not points:
        return "at least one datapoint is required"
    for point in points:
        try:
            when = _parse_time(point["timestamp"])
        except (KeyError, TypeError, ValueError):
            return "a datapoint needs an RFC 3339 timestamp"
        if not now - 7200 < when < now + 600:
            return "a datapoint's timestamp must be less than two hours in the past and 10 minutes in the future"
        if not isinstance(point.get("value"), int | float) or point["value"] != point["value"]:
            return "a datapoint needs a numeric value"
    return None


def _parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class _Handler(BaseHTTPRequestHandler):
    cloud: InstanceCloud
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def do_PUT(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_DELETE(self):
        self._handle()

    def _chunks(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return
                while size:
                    chunk = self.rfile.read(min(size, 1 << 20))
                    size -= len(chunk)
                    yield chunk
                self.rfile.readline()
        left = int(self.headers.get("content-length") or 0)
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                raise ConnectionError("the client closed the connection mid-body")
            left -= len(chunk)
            yield chunk

    def _body(self) -> bytes:
        return b"".join(self._chunks())

    def _stream_to_file(self) -> StoredObject:
        """The request body, written to a file of the fake's directory as it arrives."""
        incoming = self.cloud.directory / "incoming"
        incoming.mkdir(exist_ok=True)
        handle, name = tempfile.mkstemp(dir=incoming)
        digest, size = hashlib.md5(), 0
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in self._chunks():
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except BaseException:
            os.unlink(name)
            raise
        return StoredObject(Path(name), size, digest.hexdigest())

    def _handle(self):
        parts = urlsplit(self.path)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        kind = "none"
        received = 0
        self._status, self._logged, self._received, self._record = 0, False, 0, (path, kind)
        upload = None
        try:
            if self.command == "PUT" and STREAMED.match(path):
                upload = self._stream_to_file()
                received = upload.size
                body = _Length(upload.size)
            else:
                body = self._body() if self.command in ("PUT", "POST") else b""
                received = len(body)
            self._received = received
        except ConnectionError:
            self.close_connection = True
            with self.cloud.lock:
                self.cloud.transfers.append((self.command, path, kind, 0, received, self.client_address[1]))
            return
        try:
            if path.startswith("/opc/v2/"):
                kind = "imds"
                self._record = (path, kind)
                return self._imds(path[len("/opc/v2"):])
            if path == "/v1/x509" and self.command == "POST":
                kind = "certificate"
                self._record = (path, kind)
                return self._json(200, self.cloud.federate(self, body))
            if path.startswith("/p/"):
                kind = "par"
                self._record = (path, kind)
                return self._par([unquote(s) for s in path.split("/")[2:]], upload)
            unsigned_body = upload is not None  # object bodies stream
            kind, instance = self.cloud.principal(self, body, body_signed=not unsigned_body)
            self._record = (path, kind)
            if path == "/20190301/secretbundles/actions/getByName" and self.command == "POST":
                return self._json(200, self.cloud.secret_bundle_by_name(instance, query))
            if path.startswith("/20190301/secretbundles/") and self.command == "GET":
                return self._json(200, self.cloud.secret_bundle(instance, unquote(path.rsplit("/", 1)[1])))
            if path.startswith("/20210224/certificateBundles/") and self.command == "GET":
                return self._json(200, self.cloud.certificate_bundle(instance, unquote(path.rsplit("/", 1)[1]), query))
            if path.startswith("/20210224/certificateAuthorityBundles/") and self.command == "GET":
                return self._json(200, self.cloud.authority_bundle(instance, unquote(path.rsplit("/", 1)[1])))
            if path == "/20180401/metrics" and self.command == "POST":
                return self._json(200, self.cloud.post_metric_data(instance, body))
            if path.startswith("/20200831/logs/") and path.endswith("/actions/push") and self.command == "POST":
                self.cloud.put_logs(instance, unquote(path.split("/")[3]), body)
                return self._send(200, b"")
            if path.startswith("/n/"):
                return self._object_storage(instance, [unquote(s) for s in path.split("/")[2:]], query, body, upload)
            raise Refused(404, "NotFound", f"no fake for {self.command} {path}")
        except Refused as exc:
            self._json(exc.status, {"code": exc.code, "message": exc.message})
        except _Cut:
            self.close_connection = True
        finally:
            if upload is not None and upload.path.exists() and upload.path.parent.name == "incoming":
                upload.path.unlink()  # refused: nothing kept
            self._log()

    def _log(self, status: int | None = None) -> None:
        """Records the request once, before its answer is sent (a client that has the answer finds it logged)."""
        if getattr(self, "_logged", False):
            return
        self._logged = True
        parts, kind = self._record
        with self.cloud.lock:
            self.cloud.requests.append((self.command, parts, kind, status or self._status))
            self.cloud.transfers.append((self.command, parts, kind, status or self._status, self._received,
                                         self.client_address[1]))

    # ------------------------------------------------------------------------- routes
    def _imds(self, sub: str):
        if self.headers.get("authorization") != "Bearer Oracle":
            raise Refused(401, "NotAuthenticated", "IMDS v2 needs 'Authorization: Bearer Oracle'")
        files = self.cloud.instance.imds_files()
        files["/instance/region"] = self.cloud.region_key.encode()
        if sub not in files:
            raise Refused(404, "NotFound", sub)
        self._send(200, files[sub], "text/plain")

    def _object_storage(self, instance: str, segments: list[str], query: dict, body, upload: StoredObject | None):
        if len(segments) < 3 or segments[1] != "b":
            raise Refused(404, "NotFound", "unknown Object Storage path")
        namespace, bucket_name, rest = segments[0], segments[2], segments[3:]
        objects = self.cloud.bucket(instance, namespace, bucket_name)
        method = self.command
        if rest == ["o"] and method == "GET":
            return self._json(200, _listing(objects, query))
        if len(rest) >= 2 and rest[0] == "o":
            name = "/".join(rest[1:])
            if method == "PUT":
                return self._put_object(objects, name, upload)
            return self._read_object(objects, bucket_name, name)
        if rest[:1] == ["p"]:
            if bucket_name not in self.cloud.grants[instance].par_buckets:
                raise Refused(404, *NOT_FOUND_PAR)
            if rest in (["p"], ["p", ""]) and method == "POST":
                return self._json(200, self._create_par(namespace, bucket_name, json.loads(body)))
            if len(rest) == 2 and method == "DELETE":
                return self._delete_par(bucket_name, rest[1])
            if len(rest) == 2 and method == "GET":
                return self._json(200, self._get_par(namespace, bucket_name, rest[1]))
        if rest == ["u"] and method == "POST":
            request = json.loads(body)
            upload_id = self._new_upload(bucket_name, request["object"])
            return self._json(200, {"namespace": namespace, "bucket": bucket_name, "object": request["object"],
                                    "uploadId": upload_id, "timeCreated": "2026-11-30T00:00:00Z"})
        if rest == ["u"] and method == "GET":
            return self._json(200, [{"namespace": namespace, "bucket": bucket_name, "object": u.name, "uploadId": i,
                                     "timeCreated": "2026-11-30T00:00:00Z"}
                                    for i, u in sorted(self.cloud.uploads.items()) if u.bucket == bucket_name])
        if len(rest) >= 2 and rest[0] == "u":
            name = "/".join(rest[1:])
            record = self._upload(bucket_name, name, query.get("uploadId", ""))
            if method == "PUT":
                return self._put_part(record, query.get("uploadPartNum", ""), upload)
            if method == "GET":
                return self._json(200, [{"partNumber": n, "etag": p.md5, "md5": _b64(p.md5), "size": p.size}
                                        for n, p in sorted(record.parts.items())])
            if method == "POST":
                commit = json.loads(body)["partsToCommit"]
                return self._commit(objects, record, query["uploadId"], {p["partNum"]: p["etag"] for p in commit})
            if method == "DELETE":
                return self._abort(record, query["uploadId"])
        raise Refused(404, "NotFound", f"no fake for {method} on {'/'.join(rest)}")

    # ------------------------------------------------------------------------- objects and uploads
    def _put_object(self, objects: dict, name: str, upload: StoredObject):
        target = self.cloud.directory / "objects" / uuid.uuid4().hex
        target.parent.mkdir(exist_ok=True)
        os.replace(upload.path, target)
        with self.cloud.lock:
            previous = objects.get(name)
            objects[name] = StoredObject(target, upload.size, upload.md5)
        if previous:
            previous.delete()
        return self._send(200, b"", headers={"etag": upload.md5, "opc-content-md5": _b64(upload.md5)})

    def _read_object(self, objects: dict, bucket_name: str, name: str):
        if self.command not in ("GET", "HEAD", "DELETE"):
            raise Refused(405, "NotAllowed", self.command)
        if name not in objects:
            raise Refused(404, "ObjectNotFound", f"The object '{name}' was not found in the bucket '{bucket_name}'")
        if self.command == "DELETE":
            with self.cloud.lock:
                objects.pop(name).delete()
            return self._send(204, b"")
        self._send_file(objects[name])

    def _new_upload(self, bucket_name: str, name: str) -> str:
        upload_id = str(uuid.uuid4())
        directory = self.cloud.directory / "uploads" / upload_id
        directory.mkdir(parents=True)
        with self.cloud.lock:
            self.cloud.uploads[upload_id] = Upload(bucket_name, name, directory)
        return upload_id

    def _upload(self, bucket_name: str, name: str, upload_id: str) -> Upload:
        upload = self.cloud.uploads.get(upload_id)
        if upload is None or upload.name != name or upload.bucket != bucket_name:
            raise Refused(404, "NoSuchUpload", "no such multipart upload")
        return upload

    def _put_part(self, record: Upload, number: str, body: StoredObject):
        if not number.isdigit() or not 1 <= int(number) <= 10000:
            raise Refused(400, "InvalidParameter", "uploadPartNum must be 1-10000")
        target = record.directory / f"{int(number):05d}"
        os.replace(body.path, target)  # the same number again replaces the part
        with self.cloud.lock:
            record.parts[int(number)] = StoredObject(target, body.size, body.md5)
        return self._send(200, b"", headers={"etag": body.md5, "opc-content-md5": _b64(body.md5)})

    def _commit(self, objects: dict, record: Upload, upload_id: str, etags: dict[int, str]):
        if not etags:
            raise Refused(400, "InvalidParameter", "partsToCommit must name at least one part")
        for number, etag in sorted(etags.items()):
            stored = record.parts.get(number)
            if stored is None or stored.md5 != etag.strip('"'):
                raise Refused(400, "InvalidParameter", f"part {number} is missing or its etag differs")
        # the committed parts become the object, the others go (OCI keeps only the parts a commit names)
        target = self.cloud.directory / "objects" / uuid.uuid4().hex
        target.parent.mkdir(exist_ok=True)
        os.replace(record.directory, target)
        digest = hashlib.md5()
        files = []
        for number in sorted(etags):
            digest.update(bytes.fromhex(record.parts[number].md5))
            files.append(target / record.parts[number].path.name)
        for number in set(record.parts) - set(etags):
            (target / record.parts[number].path.name).unlink(missing_ok=True)
        etag = uuid.uuid4().hex
        with self.cloud.lock:
            previous = objects.get(record.name)
            objects[record.name] = StoredObject(target, sum(record.parts[n].size for n in etags), None,
                                                tuple(files), etag)
            self.cloud.commits.append((record.name, len(etags)))
            self.cloud.uploads.pop(upload_id, None)
        if previous:
            previous.delete()
        multipart_md5 = f"{base64.b64encode(digest.digest()).decode()}-{len(etags)}"
        return self._send(200, b"", headers={"etag": etag, "opc-multipart-md5": multipart_md5})

    def _abort(self, record: Upload, upload_id: str):
        with self.cloud.lock:
            self.cloud.uploads.pop(upload_id, None)
            self.cloud.aborts.append(record.name)
        shutil.rmtree(record.directory, ignore_errors=True)
        return self._send(204, b"")

    # ------------------------------------------------------------------------- pre-authenticated requests
    def _create_par(self, namespace: str, bucket_name: str, details: dict) -> dict:
        access, object_name = details.get("accessType"), details.get("objectName")
        if access not in PAR_ACCESS_TYPES:
            raise Refused(400, "InvalidParameter", f"accessType must be one of {', '.join(PAR_ACCESS_TYPES)}")
        if access.startswith("Object") and not object_name:
            raise Refused(400, "InvalidParameter", f"accessType {access} needs objectName")
        if access.startswith("AnyObject") and object_name:
            raise Refused(400, "InvalidParameter", f"accessType {access} applies to the bucket: no objectName")
        try:
            expires = _parse_time(details["timeExpires"])
        except (KeyError, ValueError, AttributeError):
            raise Refused(400, "InvalidParameter", "timeExpires must be an RFC 3339 time") from None
        if expires <= time.time():
            raise Refused(400, "InvalidParameter", "timeExpires must be in the future")
        par = Par(uuid.uuid4().hex, token_source.token_urlsafe(48), bucket_name, access, object_name, expires)
        with self.cloud.lock:
            self.cloud.pars[par.token] = par
        target = f"/o/{quote(object_name, safe='/')}" if object_name else "/o/"
        return {"id": par.id, "name": details.get("name", ""), "accessType": access, "objectName": object_name,
                "accessUri": f"/p/{par.token}/n/{namespace}/b/{bucket_name}{target}",
                "timeExpires": details["timeExpires"], "timeCreated": "2026-11-30T00:00:00Z"}

    def _get_par(self, namespace: str, bucket_name: str, par_id: str) -> dict:
        """GetPreauthenticatedRequest: what the PAR allows, never its URL."""
        par = next((p for p in self.cloud.pars.values() if p.id == par_id and p.bucket == bucket_name
                    and not p.upload_id), None)
        if par is None:
            raise Refused(404, *NOT_FOUND_PAR)
        expires = datetime.fromtimestamp(par.expires).astimezone().isoformat()
        return {"id": par.id, "name": "", "accessType": par.access_type, "objectName": par.object_name,
                "timeExpires": expires, "timeCreated": "2026-11-30T00:00:00Z"}

    def _delete_par(self, bucket_name: str, par_id: str):
        with self.cloud.lock:
            token = next((t for t, p in self.cloud.pars.items()
                          if p.id == par_id and p.bucket == bucket_name and not p.upload_id), None)
            if token is None:
                raise Refused(404, *NOT_FOUND_PAR)
            for doomed in [token] + [t for t, p in self.cloud.pars.items() if p.parent == token]:
                del self.cloud.pars[doomed]
        return self._send(204, b"")

    def _live_par(self, token: str) -> Par:
        with self.cloud.lock:
            par = self.cloud.pars.get(token)
            parent = self.cloud.pars.get(par.parent) if par and par.parent else par
        if par is None or parent is None or par.expires <= time.time():
            raise Refused(404, *NOT_FOUND_PAR)
        return par

    def _par(self, segments: list[str], body: StoredObject | None):
        if len(segments) < 6 or segments[1] != "n" or segments[3] != "b":
            raise Refused(404, *NOT_FOUND_PAR)
        par = self._live_par(segments[0])
        namespace, bucket_name, rest = segments[2], segments[4], segments[5:]
        if namespace != self.cloud.namespace or bucket_name != par.bucket or bucket_name not in self.cloud.buckets:
            raise Refused(404, *NOT_FOUND_PAR)
        objects = self.cloud.buckets[bucket_name]
        method = self.command
        if rest[0] == "u" and par.upload_id:
            joined = "/".join(rest[1:])
            name, _, tail = joined.rpartition(f"/id/{par.upload_id}/")
            record = self._upload(bucket_name, name, par.upload_id) if name else None
            if record is None:
                raise Refused(404, *NOT_FOUND_PAR)
            if method == "PUT" and tail:
                if tail.isdigit() and int(tail) in self.cloud.cut_parts:
                    raise _Cut()
                return self._put_part(record, tail, body)
            if method == "POST" and not tail:
                return self._commit(objects, record, par.upload_id, {n: p.md5 for n, p in record.parts.items()})
            if method == "DELETE" and not tail:
                return self._abort(record, par.upload_id)
            raise Refused(405, "NotAllowed", f"{method} on an upload's access URI")
        if rest[0] != "o" or par.upload_id:
            raise Refused(404, *NOT_FOUND_PAR)
        name = "/".join(rest[1:])
        if par.object_name is not None and name != par.object_name:
            raise Refused(404, *NOT_FOUND_PAR)
        write = method in ("PUT", "POST", "DELETE")
        if not par.allows(write) or method in ("POST", "DELETE"):
            raise Refused(404, *NOT_FOUND_PAR)
        if method == "PUT" and self.headers.get("opc-multipart", "").lower() == "true":
            upload_id = self._new_upload(bucket_name, name)
            child = Par(uuid.uuid4().hex, token_source.token_urlsafe(48), bucket_name, par.access_type, name,
                        par.expires, upload_id=upload_id, parent=par.token)
            with self.cloud.lock:
                self.cloud.pars[child.token] = child
            return self._json(200, {"namespace": namespace, "bucket": bucket_name, "object": name,
                                    "uploadId": upload_id, "timeCreated": "2026-11-30T00:00:00Z",
                                    "storageTier": "Standard",
                                    "accessUri": f"/p/{child.token}/n/{namespace}/b/{bucket_name}/u/"
                                                 f"{quote(name, safe='/')}/id/{upload_id}/"})
        if method == "PUT":
            return self._put_object(objects, name, body)
        return self._read_object(objects, bucket_name, name)

    # ------------------------------------------------------------------------- replies
    def _json(self, status: int, document) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _send_file(self, stored: StoredObject) -> None:
        start, end, status = 0, stored.size - 1, 200
        headers = {"etag": stored.md5 or stored.etag, "accept-ranges": "bytes"}
        if stored.md5:
            headers["content-md5"] = _b64(stored.md5)
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("range", "") or "")
        if match and stored.size and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), stored.size - 1) if match.group(2) else stored.size - 1
            else:
                start = max(stored.size - int(match.group(2)), 0)
            if start > end:
                raise Refused(416, "InvalidRange", f"bytes {start}-{end} of {stored.size}")
            status = 206
            headers["content-range"] = f"bytes {start}-{end}/{stored.size}"
            headers.pop("content-md5", None)
        self._status = status
        self._log()
        self.send_response(status)
        self.send_header("opc-request-id", uuid.uuid4().hex)
        self.send_header("Content-Type", "application/octet-stream")
        for name, value in headers.items():
            self.send_header(name, value)
        length = end - start + 1 if stored.size else 0
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            for chunk in stored.stream(start, length):
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, data: bytes, content_type: str | None = None, headers: dict | None = None) -> None:
        self._status = status
        self._log()
        self.send_response(status)
        self.send_header("opc-request-id", uuid.uuid4().hex)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD" or not data:
            return
        try:
            for start in range(0, len(data), 1 << 20):
                self.wfile.write(data[start:start + (1 << 20)])
        except (BrokenPipeError, ConnectionResetError):
            pass


def _listing(objects: dict, query: dict) -> dict:
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter")
    start, limit = query.get("start", ""), int(query.get("limit", 1000))
    fields = set(query.get("fields", "name").split(","))
    names = sorted(n for n in objects if n.startswith(prefix) and n >= start)
    listed, prefixes = [], set()
    for name in names:
        rest = name[len(prefix):]
        if delimiter and delimiter in rest:
            prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
            continue
        if len(listed) == limit:
            return {"objects": listed, "prefixes": sorted(prefixes), "nextStartWith": name}
        entry = {"name": name}
        if "size" in fields:
            entry["size"] = objects[name].size
        listed.append(entry)
    return {"objects": listed, "prefixes": sorted(prefixes), "nextStartWith": None}
