"""One loopback server playing, for one instance, the OCI endpoints its runtime reaches:

  /opc/v2/...                       instance metadata (v2: `Authorization: Bearer Oracle` required)
  POST /v1/x509                     federation: the instance certificate, signed with its key, for a token
  GET /20190301/secretbundles/{id}  Vault secrets (and POST .../secretbundles/actions/getByName)
  /n/{namespace}/b/{bucket}/...     Object Storage: objects, listing, multipart uploads
  GET /20210224/certificateBundles/{id}, /20210224/certificateAuthorityBundles/{id}
                                    Certificates: a private CA's certificates and its own (certificates.py)

Service calls must be signed with the session key named in the token (keyId "ST$<token>"), which an
instance gets at federation and a resource (a notebook session) finds in its environment (resource
principal 2.2: `resource_principal_env`); a call
that carries anything else (an API key, a customer secret key) is refused. As in OCI, a principal sees
only what a policy grants it: anything else answers 404 NotAuthorizedOrNotFound, the same as a
secret or bucket that does not exist.
"""
import base64
import hashlib
import json
import os
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

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
    certificates: dict = field(default_factory=dict)   # certificate OCID -> the bundle types granted
    authorities: set = field(default_factory=set)      # CA OCIDs whose bundle may be read


@dataclass
class Upload:
    bucket: str
    name: str
    parts: dict = field(default_factory=dict)  # part number -> bytes


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
        self.buckets: dict[str, dict[str, bytes]] = {}
        self.private_cas: dict[str, PrivateCA] = {}
        self.uploads: dict[str, Upload] = {}
        self.commits: list[tuple[str, int]] = []  # (object name, number of parts) of committed multipart uploads
        self.requests: list[tuple[str, str, str, int]] = []  # (method, path, key kind, status)
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

    def grant(self, secrets=(), buckets=(), authorities=(), instance: str | None = None) -> None:
        grants = self.grants[instance or self.instance.instance_ocid]
        grants.secrets.update(secrets)
        grants.buckets.update(buckets)
        grants.authorities.update(authorities)

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

    def bucket(self, instance: str, namespace: str, name: str) -> dict:
        if namespace != self.namespace or name not in self.buckets or name not in self.grants[instance].buckets:
            raise Refused(404, "BucketNotFound", f"Either the bucket named '{name}' does not exist in the namespace "
                          f"'{namespace}' or you are not authorized to access it")
        return self.buckets[name]


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


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

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _handle(self):
        body = self._body() if self.command in ("PUT", "POST") else b""
        parts = urlsplit(self.path)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        kind = "none"
        try:
            if path.startswith("/opc/v2/"):
                kind = "imds"
                return self._imds(path[len("/opc/v2"):])
            if path == "/v1/x509" and self.command == "POST":
                kind = "certificate"
                return self._json(200, self.cloud.federate(self, body))
            unsigned_body = self.command == "PUT" and ("/o/" in path or "/u/" in path)  # object bodies stream
            kind, instance = self.cloud.principal(self, body, body_signed=not unsigned_body)
            if path == "/20190301/secretbundles/actions/getByName" and self.command == "POST":
                return self._json(200, self.cloud.secret_bundle_by_name(instance, query))
            if path.startswith("/20190301/secretbundles/") and self.command == "GET":
                return self._json(200, self.cloud.secret_bundle(instance, unquote(path.rsplit("/", 1)[1])))
            if path.startswith("/20210224/certificateBundles/") and self.command == "GET":
                return self._json(200, self.cloud.certificate_bundle(instance, unquote(path.rsplit("/", 1)[1]), query))
            if path.startswith("/20210224/certificateAuthorityBundles/") and self.command == "GET":
                return self._json(200, self.cloud.authority_bundle(instance, unquote(path.rsplit("/", 1)[1])))
            if path.startswith("/n/"):
                return self._object_storage(instance, [unquote(s) for s in path.split("/")[2:]], query, body)
            raise Refused(404, "NotFound", f"no fake for {self.command} {path}")
        except Refused as exc:
            self._json(exc.status, {"code": exc.code, "message": exc.message})
        finally:
            with self.cloud.lock:
                self.cloud.requests.append((self.command, path, kind, getattr(self, "_status", 0)))

    # ------------------------------------------------------------------------- routes
    def _imds(self, sub: str):
        if self.headers.get("authorization") != "Bearer Oracle":
            raise Refused(401, "NotAuthenticated", "IMDS v2 needs 'Authorization: Bearer Oracle'")
        files = self.cloud.instance.imds_files()
        files["/instance/region"] = self.cloud.region_key.encode()
        if sub not in files:
            raise Refused(404, "NotFound", sub)
        self._send(200, files[sub], "text/plain")

    def _object_storage(self, instance: str, segments: list[str], query: dict, body: bytes):
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
                with self.cloud.lock:
                    objects[name] = body
                return self._send(200, b"", headers={"etag": hashlib.md5(body).hexdigest(), "opc-content-md5": _md5(body)})
            if name not in objects:
                raise Refused(404, "ObjectNotFound", f"The object '{name}' was not found in the bucket '{bucket_name}'")
            if method in ("GET", "HEAD"):
                return self._send(200, objects[name], "application/octet-stream",
                                  {"etag": hashlib.md5(objects[name]).hexdigest(), "content-md5": _md5(objects[name])})
            if method == "DELETE":
                with self.cloud.lock:
                    del objects[name]
                return self._send(204, b"")
        if rest == ["u"] and method == "POST":
            request = json.loads(body)
            upload_id = uuid.uuid4().hex
            with self.cloud.lock:
                self.cloud.uploads[upload_id] = Upload(bucket_name, request["object"])
            return self._json(200, {"namespace": namespace, "bucket": bucket_name, "object": request["object"],
                                    "uploadId": upload_id, "timeCreated": "2026-11-30T00:00:00Z"})
        if len(rest) >= 2 and rest[0] == "u":
            return self._multipart(objects, bucket_name, "/".join(rest[1:]), query, body)
        raise Refused(404, "NotFound", f"no fake for {method} on {'/'.join(rest)}")

    def _multipart(self, objects: dict, bucket_name: str, name: str, query: dict, body: bytes):
        upload = self.cloud.uploads.get(query.get("uploadId", ""))
        if upload is None or upload.name != name or upload.bucket != bucket_name:
            raise Refused(404, "NoSuchUpload", "no such multipart upload")
        if self.command == "PUT":
            number = int(query["uploadPartNum"])
            if not 1 <= number <= 10000:
                raise Refused(400, "InvalidParameter", "uploadPartNum must be 1-10000")
            with self.cloud.lock:
                upload.parts[number] = body
            return self._send(200, b"", headers={"etag": hashlib.md5(body).hexdigest(), "opc-content-md5": _md5(body)})
        if self.command == "POST":
            commit = json.loads(body)["partsToCommit"]
            numbers = sorted(p["partNum"] for p in commit)
            for part in commit:
                stored = upload.parts.get(part["partNum"])
                if stored is None or hashlib.md5(stored).hexdigest() != part["etag"]:
                    raise Refused(400, "InvalidParameter", f"part {part['partNum']} is missing or its etag differs")
            data = b"".join(upload.parts[n] for n in numbers)
            with self.cloud.lock:
                objects[name] = data
                self.cloud.commits.append((name, len(numbers)))
                del self.cloud.uploads[query["uploadId"]]
            return self._send(200, b"", headers={"etag": hashlib.md5(data).hexdigest()})
        if self.command == "DELETE":
            with self.cloud.lock:
                del self.cloud.uploads[query["uploadId"]]
            return self._send(204, b"")
        raise Refused(405, "NotAllowed", self.command)

    # ------------------------------------------------------------------------- replies
    def _json(self, status: int, document) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str | None = None, headers: dict | None = None) -> None:
        self._status = status
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
            entry["size"] = len(objects[name])
        listed.append(entry)
    return {"objects": listed, "prefixes": sorted(prefixes), "nextStartWith": None}
