"""The tracking server's app (`mlflow server --app-name oci`, the `mlflow.app` entry point in mlflow_oci-0.dist-info):
MLflow's own, with its users and permissions when MLFLOW_AUTH is mlflow or oidc, and the audit trail (audit.py)
registered before the first request, in every worker: on the Flask app, and on the FastAPI app around it for the
artifact uploads that app serves itself."""
import os


def create_app():
    from mlflow.server import app as flask_app

    from mlflow_oci import audit

    audit.install(flask_app)
    if os.environ.get("MLFLOW_AUTH") in ("mlflow", "oidc"):
        from mlflow.server.auth import create_app as with_users

        app = with_users(flask_app)
    else:
        from mlflow.environment_variables import _MLFLOW_SGI_NAME

        if _MLFLOW_SGI_NAME.get() != "uvicorn":
            return flask_app  # gunicorn, waitress: MLflow's Flask app itself
        from mlflow.server import fastapi_app

        app = fastapi_app.app
    if app is not flask_app:  # uvicorn: the FastAPI app around it serves artifact uploads itself
        audit.install_asgi(app)
    return app
