"""Where artifacts may live, checked for everyone with MLflow's own users (per-person and single sign-on).

The server reads and writes artifacts with its own identity (the VM's instance principal), so a location a
user names is a location the server opens for them. Two kinds are refused:
- an experiment created with its own `artifact_location`: the server puts every experiment under its own
  artifact root, where permissions follow the experiment; a location inside another experiment's files
  would let its runs' artifacts be read through this one;
- a model version whose source is a store URI (`oci://…`, `s3://…`): MLflow checks `runs:/`, `models:/`
  and `mlflow-artifacts:` sources against what the user may read, but a store URI against nothing, and
  `get-artifact` then serves it. That one is refused by MLflow itself, with the pattern below
  (MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX, set by docker/tracking/entrypoint.sh).
A version registered before that rule may still name such a location: `get-artifact` of a version whose
location is not one of those MLflow checks (every location this server makes is) is refused too, for
everyone.
"""
import re

# Model-version sources MLflow can check against a user's permissions, and the placeholders its prompt
# registry sends (mlflow/prompt/constants.py, _PROMPT_SOURCE_PLACEHOLDERS).
MODEL_VERSION_SOURCES = r"^(runs:/|models:/|mlflow-artifacts:/|dummy-source$|prompt-template$)"
EXPERIMENT_CREATE = re.compile(r"^/(ajax-)?api/2\.0/mlflow/experiments/create$")
MODEL_VERSION_ARTIFACT = "/model-versions/get-artifact"  # the UI's download route (mlflow/server/__init__.py)


def _answer(status: int, code: str, message: str):
    from flask import jsonify

    answer = jsonify(error_code=code, message=message)
    answer.status_code = status
    return answer


def _own_location(request):
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not body.get("artifact_location"):
        return None
    return _answer(400, "INVALID_PARAMETER_VALUE", "artifact_location is chosen by the server: create the "
                   "experiment without one (its artifacts go under the server's artifact root)")


def _version_stored_elsewhere(request):
    name, version = request.args.get("name"), request.args.get("version")
    if not name or not version:
        return None  # MLflow answers a malformed request itself
    from mlflow.exceptions import MlflowException
    from mlflow.server.handlers import _get_model_registry_store

    try:
        location = _get_model_registry_store().get_model_version_download_uri(name, version)
    except MlflowException:
        return None  # no such version: MLflow's own 404
    if re.match(MODEL_VERSION_SOURCES, location):
        return None
    scheme = location.split(":", 1)[0]
    return _answer(403, "PERMISSION_DENIED", f"version {version} of {name} was registered from a {scheme}: location "
                   "outside the server's artifact root, which the server does not open for anyone; an admin "
                   "registers it again from its run (runs:/<run id>/<path>) and deletes this version")


def refusal(request):
    """The Response refusing a request that names an artifact location of its own, or downloads a model
    version stored at a store URI; else None."""
    if request.method == "POST" and EXPERIMENT_CREATE.match(request.path):
        return _own_location(request)
    if request.method == "GET" and request.path.endswith(MODEL_VERSION_ARTIFACT):
        return _version_stored_elsewhere(request)
    return None


def authenticate_basic():
    """MLflow's authorization_function for per-person logins: its own basic auth, then the rule above."""
    from flask import Response, request
    from mlflow.server.auth import authenticate_request_basic_auth

    result = authenticate_request_basic_auth()
    if isinstance(result, Response):
        return result
    return refusal(request) or result
