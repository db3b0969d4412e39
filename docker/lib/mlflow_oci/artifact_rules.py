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
"""
import re

# Model-version sources MLflow can check against a user's permissions, and the placeholders its prompt
# registry sends (mlflow/prompt/constants.py, _PROMPT_SOURCE_PLACEHOLDERS).
MODEL_VERSION_SOURCES = r"^(runs:/|models:/|mlflow-artifacts:/|dummy-source$|prompt-template$)"
EXPERIMENT_CREATE = re.compile(r"^/(ajax-)?api/2\.0/mlflow/experiments/create$")


def refusal(request):
    """A 400 Response for a request that names its own artifact location, else None."""
    if request.method != "POST" or not EXPERIMENT_CREATE.match(request.path):
        return None
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not body.get("artifact_location"):
        return None
    from flask import jsonify

    answer = jsonify(error_code="INVALID_PARAMETER_VALUE",
                     message="artifact_location is chosen by the server: create the experiment without one "
                             "(its artifacts go under the server's artifact root)")
    answer.status_code = 400
    return answer


def authenticate_basic():
    """MLflow's authorization_function for per-person logins: its own basic auth, then the rule above."""
    from flask import Response, request
    from mlflow.server.auth import authenticate_request_basic_auth

    result = authenticate_request_basic_auth()
    if isinstance(result, Response):
        return result
    return refusal(request) or result
