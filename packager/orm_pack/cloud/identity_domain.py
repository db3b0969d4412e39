"""The identity domain custom claim that puts a person's group names into the domain's tokens.

Single sign-on (mlflow_users = "sso") maps two groups of the domain to MLflow admins and users, and the
tracking server reads them from the tokens' `groups` claim. A domain issues no such claim until its
administrator adds a custom claim, a domain-wide setting of the identity domains REST API
(`/admin/v1/CustomClaims`) that Terraform cannot make. Requests are signed with the user's OCI API key,
as the SDK's identity domains client signs them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from orm_pack.errors import ExitCode, UserError

CLAIMS_PATH = "/admin/v1/CustomClaims"
CLAIM_SCHEMA = "urn:ietf:params:scim:schemas:oracle:idcs:CustomClaim"
GROUP_NAMES = "$user.groups.*.display"   # a user expression: the display names of the person's groups
DOMAIN_URL = re.compile(r"^https://idcs-[0-9a-f]{32}\.identity\.[a-z0-9.-]+[a-z](:443)?/?$")
CLAIM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


class ClaimError(Exception):
    """What went wrong, as one line a user can act on."""


@dataclass(frozen=True)
class Outcome:
    created: bool
    claim: dict


def claim_body(name: str) -> dict:
    """The claim: the group names, in ID and access tokens, whatever scopes a client asks for."""
    return {"schemas": [CLAIM_SCHEMA], "name": name, "value": GROUP_NAMES, "expression": True,
            "mode": "always", "tokenType": "BOTH", "allScopes": True}


def domain_base(domain_url: str) -> str:
    if not DOMAIN_URL.match(domain_url or ""):
        raise ClaimError(f"--domain-url {domain_url!r} is not an identity domain's Domain URL: "
                         "https://idcs-<32 hex characters>.identity.oraclecloud.com (the stack output sso_application)")
    return domain_url.rstrip("/").removesuffix(":443")


def check_name(name: str) -> None:
    if not CLAIM_NAME.match(name):
        raise ClaimError(f"--claim-name {name!r}: a claim name is a letter or _ then letters, digits or _ (at most 100)")


def signed_sender(signer, target: str) -> Callable[..., Any]:
    """send(method, url, **kwargs) for ensure(): requests signed with the user's OCI key; an unreachable
    domain is a UserError naming it."""
    from oci._vendor import requests  # the SDK's own copy, with which its signers work

    def send(method, url, **kwargs):
        try:
            return requests.request(method, url, auth=signer, timeout=(10, 60), **kwargs)
        except requests.exceptions.RequestException as exc:
            raise UserError(f"cannot reach the identity domain at {target}: {type(exc).__name__}", ExitCode.SERVICE) from None

    return send


def ensure(send: Callable[..., Any], base: str, name: str) -> Outcome:
    """Create the claim unless the domain has it already. `send(method, url, **kwargs)` is a signed HTTP call
    returning a response with .status_code and .text."""
    check_name(name)
    wanted = claim_body(name)
    found = _answer(send("GET", base + CLAIMS_PATH, params={"filter": f'name eq "{name}"'}), base, "list its custom claims")
    for existing in found.get("Resources") or []:
        if existing.get("name") != name:
            continue
        if existing.get("value") == GROUP_NAMES and existing.get("expression") is True:
            return Outcome(created=False, claim=existing)
        raise ClaimError(f"the domain already has a custom claim named {name} with another value "
                         f"({existing.get('value')!r}): pick another name with --claim-name and give the tracking "
                         f"server the same name as MLFLOW_OIDC_GROUPS_CLAIM")
    created = _answer(send("POST", base + CLAIMS_PATH, data=json.dumps(wanted),
                           headers={"Content-Type": "application/scim+json"}), base, "create the claim")
    return Outcome(created=True, claim=created)


def _answer(response, base: str, doing: str) -> dict:
    if response.status_code in (401, 403):
        raise ClaimError(f"the identity domain {base} refused to {doing} ({response.status_code}{_detail(response)}): "
                         "custom claims are a domain-wide setting only an Identity Domain Administrator may change; "
                         "run this with such a user's API key, or ask one to")
    if response.status_code >= 400:
        raise ClaimError(f"the identity domain {base} could not {doing} ({response.status_code}{_detail(response)})")
    try:
        return response.json()
    except ValueError as exc:
        raise ClaimError(f"the identity domain {base} answered something that is not JSON when asked to {doing}") from exc


def _detail(response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return f": {str(detail).splitlines()[0][:200]}" if detail else ""
