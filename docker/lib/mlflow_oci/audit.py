"""The audit trail: one JSON line for every write through the tracking server's API, on the server's stderr
(the journal on a VM, the pod's log on OKE), from where the log shipper sends it to OCI Logging.

    {"audit": "mlflow", "time": "2026-12-07T09:00:00.123Z", "user": "alice", "subject": "5b1e...",
     "login": "oidc", "action": "runs/delete", "method": "POST", "status": 200, "from": "203.0.113.7",
     "experiment_id": "3", "run_id": "a1b2...", "name": "wine", "version": "2", "alias": "champion"}

- who: with MLflow's users (MLFLOW_AUTH=mlflow or oidc) the user MLflow authenticated, and with single sign-on
  also `subject`, the identity provider's immutable `sub`; with the shared login (MLFLOW_AUTH=proxy) the
  login nginx checked, which it sends in X-MLflow-OCI-User and replaces whatever a client sent.
- what: the API route after /api/ (action), its method and the answer's status, refusals included; the ids
  and names the request or its answer carries (experiment, run, registered model, version, alias). Never a
  value, a param, a tag's value or a body.
- from where: the address nginx saw, the last entry of X-Forwarded-For (the ones before it are the client's
  own word).
Reads (GET, and the POST searches) are not written. MLFLOW_OCI_AUDIT=false turns the trail off.

Artifact uploads (PUT .../mlflow-artifacts/artifacts/<path>) are served by MLflow's FastAPI router, not Flask:
`install_asgi` writes theirs from a middleware of the FastAPI app, outside MLflow's permission middleware, which
leaves the user it authenticated in the request's state.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time

from mlflow_oci import switches

SWITCH = "MLFLOW_OCI_AUDIT"
USER_HEADER = "X-MLflow-OCI-User"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API = re.compile(r"^/(?:ajax-)?api/[0-9.]+/(?P<route>mlflow(?:-artifacts)?/.+)$")
# The artifact routes MLflow's FastAPI router serves itself (mlflow/server/artifact_router.py).
NATIVE_ARTIFACTS = re.compile(r"^/(?:ajax-)?api/2\.0/mlflow-artifacts/artifacts/(?P<path>.+)$")
READ_ROUTES = re.compile(r"(^|/)(search|get|list)[^/]*$|/search-")
# What a request or its answer may name, by MLflow's field names; the first found wins.
TARGETS = {
    "experiment_id": ("experiment_id",),
    "run_id": ("run_id", "run_uuid"),
    "name": ("name",),
    "version": ("version",),
    "alias": ("alias",),
}
FIELD_LIMIT = 256


def install(app) -> bool:
    """Writes the trail for `app` (MLflow's Flask app), before it answers its first request."""
    if not switches.on(SWITCH):
        return False
    app.after_request(_after_request)
    return True


def install_asgi(app) -> bool:
    """Writes the trail of the requests `app` (the FastAPI app around MLflow's Flask app) serves itself."""
    if not switches.on(SWITCH):
        return False

    @app.middleware("http")
    async def audit_native_writes(request, call_next):
        response = await call_next(request)
        if request.method == "PUT" and NATIVE_ARTIFACTS.match(request.url.path):
            try:
                from starlette.concurrency import run_in_threadpool

                record = await run_in_threadpool(_native_entry, request, response.status_code)
                print(json.dumps(record, separators=(",", ":")), file=sys.stderr, flush=True)
            except Exception as exc:  # as in Flask: the trail must not break an answer
                print(json.dumps({"audit": "mlflow", "error": type(exc).__name__}), file=sys.stderr, flush=True)
        return response

    return True


def _native_entry(request, status: int) -> dict:
    route = NATIVE_ARTIFACTS.match(request.url.path).group("path")
    user = getattr(request.state, "username", None)
    who = _shared_login(request.headers) if user is None else _mlflow_user(user, _subject_of(user))
    return {"audit": "mlflow", "time": _now(), **who, "action": "artifacts/upload", "method": request.method,
            "status": status, "from": _address(request.headers, request.client.host if request.client else None),
            "path": _clip(route)}


def _subject_of(user: str) -> str | None:
    """With single sign-on, the provider's subject of an MLflow user (mlflow_oci.people)."""
    if os.environ.get("MLFLOW_AUTH") != "oidc":
        return None
    from mlflow_oci import oidc_auth

    return oidc_auth.runtime().people.subject_of(user)


def _after_request(response):
    from flask import request

    try:
        record = entry(request, response)
        if record is not None:
            print(json.dumps(record, separators=(",", ":")), file=sys.stderr, flush=True)
    except Exception as exc:  # the trail must not break an answer; its own failure is written instead
        print(json.dumps({"audit": "mlflow", "error": type(exc).__name__}), file=sys.stderr, flush=True)
    return response


def entry(request, response) -> dict | None:
    """The audit line of one request, or None for a read."""
    match = API.match(request.path)
    if request.method not in WRITES or not match:
        return None
    route = match.group("route").removeprefix("mlflow/")
    if READ_ROUTES.search(route):
        return None
    record = {"audit": "mlflow", "time": _now(), **_who(request), "action": _action(route, request.method),
              "method": request.method, "status": response.status_code, "from": _address(request.headers, request.remote_addr)}
    for source in (_request_fields(request), _answer_fields(response)):
        for key, value in _targets(source).items():
            record.setdefault(key, value)
    if route.startswith("mlflow-artifacts/"):
        record["path"] = _clip(route.removeprefix("mlflow-artifacts/artifacts/"))
    return record


def _who(request) -> dict:
    from flask import g

    user = getattr(g, "mlflow_authenticated_user", None)
    if user is not None:  # MLflow's users: what its auth app authenticated
        return _mlflow_user(user, getattr(g, "mlflow_oci_subject", None))
    return _shared_login(request.headers)


def _mlflow_user(user: str, subject: str | None) -> dict:
    return {"user": user, **({"subject": subject} if subject else {}), "login": "oidc" if subject else "mlflow"}


def _shared_login(headers) -> dict:
    return {"user": headers.get(USER_HEADER) or None, "login": "shared"}


def _action(route: str, method: str) -> str:
    if route.startswith("mlflow-artifacts/"):
        if method == "DELETE":
            return "artifacts/delete"
        return "artifacts/upload" if not route.endswith("/mpu/create") else "artifacts/multipart-upload"
    return route


def _address(headers, peer: str | None) -> str | None:
    last = headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
    return last or peer


def _request_fields(request) -> dict:
    body = request.get_json(silent=True, cache=True) if request.mimetype == "application/json" else None
    fields = dict(request.args)
    if isinstance(body, dict):
        fields.update(body)
    return fields


def _answer_fields(response) -> dict:
    if response.mimetype != "application/json" or response.direct_passthrough or response.is_streamed:
        return {}
    if (response.content_length or 0) > 65536:
        return {}
    try:
        answer = json.loads(response.get_data())
    except ValueError:
        return {}
    if not isinstance(answer, dict):
        return {}
    fields = {}
    for key in ("experiment_id", "run", "registered_model", "model_version"):
        value = answer.get(key)
        if isinstance(value, dict):
            info = value.get("info", value)
            fields.update({k: v for k, v in info.items() if isinstance(v, str | int)})
        elif value is not None:
            fields[key] = value
    return fields


def _targets(fields: dict) -> dict:
    found = {}
    for target, names in TARGETS.items():
        for name in names:
            value = fields.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                found[target] = _clip(str(value))
                break
    return found


def _clip(text: str) -> str:
    return text if len(text) <= FIELD_LIMIT else text[:FIELD_LIMIT] + "…"


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
