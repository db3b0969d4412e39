"""The identity domains REST API's custom claims (`/admin/v1/CustomClaims`), as the fake serves them.

Rules it enforces (identity domains docs, "Managing Custom Claims", and the CustomClaim schema): a claim
has a name (unique in the domain, at most 100 characters), a value, `expression`, `mode` (always, request,
never), `tokenType` (AT, IT, BOTH) and `allScopes`; it applies to every token of the domain; only an
Identity Domain Administrator may list or change claims (the fake's `domain_admins` names the API users
who are one). Errors are SCIM error documents.
"""
import re
import uuid

CLAIMS_PATH = "/admin/v1/CustomClaims"
SCHEMA = "urn:ietf:params:scim:schemas:oracle:idcs:CustomClaim"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
REQUIRED = ("name", "value", "expression", "mode", "tokenType", "allScopes")


class DomainError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail

    def document(self) -> dict:
        return {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}


def is_identity_domain(path: str) -> bool:
    return path.startswith("/admin/v1/")


def handle(claims: dict, caller_is_admin: bool, method: str, path: str, query: dict, payload: dict) -> tuple[int, dict]:
    """(status, document) for one request to the custom claims endpoint; raises DomainError."""
    if path.rstrip("/") != CLAIMS_PATH:
        raise DomainError(404, f"no route for {method} {path}")
    if not caller_is_admin:
        raise DomainError(403, "Insufficient privileges: the caller is not an Identity Domain Administrator")
    if method == "GET":
        found = list(claims.values())
        wanted = re.fullmatch(r'\s*name\s+eq\s+"([^"]*)"\s*', query.get("filter", "")) if query.get("filter") else None
        if query.get("filter") and not wanted:
            raise DomainError(400, f"the fake knows only the filter name eq \"...\", not {query['filter']!r}")
        if wanted:
            found = [c for c in found if c["name"] == wanted.group(1)]
        return 200, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": len(found),
                     "Resources": found, "startIndex": 1, "itemsPerPage": len(found)}
    if method == "POST":
        missing = [k for k in REQUIRED if k not in payload]
        if payload.get("schemas") != [SCHEMA] or missing:
            raise DomainError(400, f"a CustomClaim needs schemas [{SCHEMA}] and {', '.join(missing) or 'its attributes'}")
        if payload["mode"] not in ("always", "request", "never") or payload["tokenType"] not in ("AT", "IT", "BOTH"):
            raise DomainError(400, "mode must be always, request or never and tokenType AT, IT or BOTH")
        if not isinstance(payload["expression"], bool) or not isinstance(payload["allScopes"], bool):
            raise DomainError(400, "expression and allScopes are booleans")
        if len(payload["name"]) > 100:
            raise DomainError(400, "a custom claim's name is at most 100 characters")
        if any(c["name"] == payload["name"] for c in claims.values()):
            raise DomainError(409, f"a custom claim named {payload['name']} already exists")
        claim = dict(payload, id=uuid.uuid4().hex, meta={"resourceType": "CustomClaim"})
        claims[claim["id"]] = claim
        return 201, claim
    raise DomainError(405, f"{method} is not supported on {CLAIMS_PATH} here")
