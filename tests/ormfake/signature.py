"""Verify OCI HTTP request signatures (draft-cavage-http-signatures, rsa-sha256), as OCI services do.

GET/DELETE/HEAD sign `date (request-target) host`; POST/PUT/PATCH also sign
`content-length content-type x-content-sha256`, and x-content-sha256 must be the body's SHA-256.
Object Storage's PutObject is the exception the service documents: its body headers need no signature
(uploads stream), so `body_signed=False` for it.
"""
import base64
import hashlib
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

GENERIC_HEADERS = ("date", "(request-target)", "host")
BODY_HEADERS = ("content-length", "content-type", "x-content-sha256")
MAX_CLOCK_SKEW_SECONDS = 300


class SignatureError(Exception):
    """Why a request is not authenticated (the fake's log says it; the client sees 401)."""


def parse_authorization(value: str) -> dict:
    if not value or not value.startswith("Signature "):
        raise SignatureError("no 'Authorization: Signature ...' header")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', value[len("Signature "):]))
    for name in ("keyId", "signature", "headers", "algorithm"):
        if name not in fields:
            raise SignatureError(f"Authorization header lacks {name}")
    if fields["algorithm"] != "rsa-sha256":
        raise SignatureError(f"unsupported algorithm {fields['algorithm']}")
    if fields.get("version", "1") != "1":
        raise SignatureError(f"unsupported signature version {fields.get('version')}")
    return fields


def verify(method: str, target: str, headers, body: bytes, public_keys, body_signed: bool = True,
           generic_headers: tuple = GENERIC_HEADERS) -> str:
    """Check one request; returns the keyId. `headers` is case-insensitive (http.client message);
    `target` is the path with its query string exactly as sent; `public_keys` maps keyId -> key
    (anything with .get). The federation endpoint signs without `host`: it passes its own list."""
    fields = parse_authorization(headers.get("authorization", ""))
    signed = fields["headers"].lower().split()
    required = list(generic_headers)
    if method.upper() in ("POST", "PUT", "PATCH") and body_signed:
        required += BODY_HEADERS
    missing = [h for h in required if h not in signed]
    if missing:
        raise SignatureError(f"signed headers lack {', '.join(missing)}")
    key = public_keys.get(fields["keyId"])
    if key is None:
        raise SignatureError(f"unknown keyId {fields['keyId']}")
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
            continue
        value = headers.get(name)
        if value is None:
            raise SignatureError(f"signed header {name} is not in the request")
        lines.append(f"{name}: {value}")
    try:
        key.verify(base64.b64decode(fields["signature"]), "\n".join(lines).encode(), padding.PKCS1v15(),
                   hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise SignatureError("signature does not verify with the key of " + fields["keyId"]) from None
    if "x-content-sha256" in signed:
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if headers.get("x-content-sha256") != digest:
            raise SignatureError("x-content-sha256 does not match the body")
    if "content-length" in signed and int(headers.get("content-length", "-1")) != len(body):
        raise SignatureError("content-length does not match the body")
    try:
        sent = parsedate_to_datetime(headers.get("date"))
    except (TypeError, ValueError):
        raise SignatureError("date header is not an HTTP date") from None
    if abs((datetime.now(timezone.utc) - sent).total_seconds()) > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureError("date header is more than 5 minutes off")
    return fields["keyId"]
