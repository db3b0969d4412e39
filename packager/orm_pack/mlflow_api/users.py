"""MLflow's users and permissions over its auth REST API (the tracking server's `basic-auth` app), as an
admin: the calls `orm-pack users` makes, over the package's one MLflow HTTP client (http_client).

    >>> api = UsersApi("https://203.0.113.7", "mlflow", password, ca_file="ca.pem")
    >>> api.create("alice", "a-long-password"); api.grant("alice", "experiment", "12", "EDIT")
"""
from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from orm_pack.errors import ExitCode, UserError
from orm_pack.mlflow_api import http_client, tls

PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")
RESOURCE_TYPES = ("experiment", "registered_model")


@dataclass(frozen=True)
class User:
    username: str
    is_admin: bool


class UsersApi:
    def __init__(self, url: str, username: str, password: str, verify_tls: bool = True, timeout: float = 30,
                 ca_file: str | None = None):
        try:
            self.endpoint = http_client.Endpoint(url, username, password, timeout, verify_tls=verify_tls,
                                                 ca_file=ca_file)
        except ValueError:
            raise UserError(f"the MLflow URL must be http(s)://host[:port] (got {url!r})", ExitCode.USAGE) from None
        self.base = self.endpoint.url
        self.username = username
        self.path_prefix = urlsplit(self.base).path  # a server under a path keeps it

    def _call(self, method: str, path: str, body: dict | None = None, query: dict | None = None) -> dict:
        target = self.path_prefix + path + (f"?{urlencode(query)}" if query else "")
        try:  # a dict body goes as JSON (http_client sets its Content-Type)
            answer = self.endpoint.request(method, target, body=body, headers={"Accept": "application/json"})
        except ssl.SSLCertVerificationError as error:
            endpoint = self.endpoint
            shown = tls.presented_or_none(endpoint.host, endpoint.port, endpoint.timeout)
            problem = tls.explain(error, endpoint.host, endpoint.ca_file, shown)
            raise UserError(f"{self.base}: {problem.detail} -> {problem.fix}", ExitCode.CONFIG) from None
        except (OSError, http.client.HTTPException) as error:
            raise UserError(f"cannot reach MLflow at {self.base}: {error}", ExitCode.SERVICE) from None
        if answer.status >= 400:
            raise self._refused(answer)
        try:
            return json.loads(answer.body.decode() or "{}")
        except ValueError:
            raise UserError(f"{method} {path}: MLflow answered with something that is not JSON", ExitCode.SERVICE) \
                from None

    def _refused(self, answer: http_client.Answer) -> UserError:
        message = answer.json().get("message", "") or (answer.text() if answer.headers.get(
            "Content-Type", "").startswith("text/plain") else "")
        # MLflow appends the database error to some messages, SQL parameters (a password hash) included:
        # only its own first sentence is shown.
        message = str(message).split("\n", 1)[0].split(" Error: (", 1)[0].strip()
        if answer.status == 401:
            return UserError(f"MLflow refused the login of {self.username!r} (401): check MLFLOW_TRACKING_USERNAME "
                             "and MLFLOW_TRACKING_PASSWORD", ExitCode.CONFIG)
        if answer.status == 403:
            return UserError(f"{self.username!r} may not do this (403): users are managed by an MLflow admin",
                             ExitCode.CONFIG)
        if answer.status == 404 and not message:
            return UserError(f"{self.base} has no user API (404): is the tracking server running with its auth "
                             "app (--app-name basic-auth)?", ExitCode.NOT_FOUND)
        conflict = answer.status == 409 or "already exists" in message
        code = ExitCode.NOT_FOUND if answer.status == 404 else ExitCode.CONFLICT if conflict else ExitCode.USAGE
        return UserError(f"MLflow refused ({answer.status}): {message or answer.reason}", code)

    # ------------------------------------------------------------------ users
    def list(self) -> list[User]:
        document = self._call("GET", "/api/2.0/mlflow/users/list")
        return sorted((User(u["username"], bool(u.get("is_admin"))) for u in document.get("users", [])),
                      key=lambda user: user.username)

    def create(self, username: str, password: str, admin: bool = False) -> None:
        self._call("POST", "/api/2.0/mlflow/users/create", {"username": username, "password": password})
        if admin:
            self.set_admin(username, True)

    def set_admin(self, username: str, admin: bool) -> None:
        self._call("PATCH", "/api/2.0/mlflow/users/update-admin", {"username": username, "is_admin": admin})

    def remove(self, username: str) -> None:
        if username == self.username:
            raise UserError("refusing to remove the user you are logged in as", ExitCode.USAGE)
        self._call("DELETE", "/api/2.0/mlflow/users/delete", {"username": username})

    def revoke(self, username: str) -> None:
        """Ends every sign-in session of `username` on every replica (single sign-on's /oidc/revoke)."""
        try:
            self._call("POST", "/oidc/revoke", {"username": username})
        except UserError as error:
            if error.exit_code != ExitCode.NOT_FOUND or f"no MLflow user named {username}" in str(error):
                raise
            raise UserError(f"{self.base} keeps no sign-in sessions (its people sign in with passwords, checked on "
                            f"every request): change or remove {username}'s password instead", ExitCode.USAGE) from None

    # ------------------------------------------------------------------ permissions
    def experiment_id(self, name_or_id: str) -> str:
        if name_or_id.isdigit():
            return name_or_id
        document = self._call("GET", "/api/2.0/mlflow/experiments/get-by-name", query={"experiment_name": name_or_id})
        return document["experiment"]["experiment_id"]

    def grant(self, username: str, resource_type: str, resource_id: str, permission: str) -> None:
        if resource_type not in RESOURCE_TYPES:
            raise UserError(f"resource type must be one of {', '.join(RESOURCE_TYPES)}", ExitCode.USAGE)
        if permission not in PERMISSIONS:
            raise UserError(f"permission must be one of {', '.join(PERMISSIONS)} (got {permission!r})", ExitCode.USAGE)
        target = {"username": username, "resource_type": resource_type, "resource_id": resource_id}
        try:
            self._call("POST", "/api/3.0/mlflow/users/permissions/grant", {**target, "permission": permission})
        except UserError as error:
            if error.exit_code != ExitCode.CONFLICT:
                raise
            # A grant replaces the user's earlier permission on the resource.
            self._call("POST", "/api/3.0/mlflow/users/permissions/revoke", target)
            self._call("POST", "/api/3.0/mlflow/users/permissions/grant", {**target, "permission": permission})
