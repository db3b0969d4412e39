"""Reserves the registered model the model endpoint follows before the server starts.

With MLflow's own users (MLFLOW_AUTH=mlflow or oidc), whoever creates a registered model manages it: a
user who created the served name first could put any code behind the endpoint, and give it to nobody
else. The entrypoint creates that name (MLFLOW_SERVED_MODEL_NAME) in the registry first, so it has no
owner but the admins; other users get MLFLOW_AUTH_DEFAULT_PERMISSION on it (READ: they use it; an admin
grants EDIT to whoever publishes versions).

    python3 served_model.py      reads MLFLOW_BACKEND_STORE_URI and MLFLOW_SERVED_MODEL_NAME
"""
import os
import sys
import time

DESCRIPTION = ("Served by the stack's model endpoint (the version its alias names). Reserved at the tracking "
               "server's first start; an MLflow admin grants EDIT to whoever may publish versions.")


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} served_model: {message}", file=sys.stderr, flush=True)


def reserve(store_uri: str, name: str) -> bool:
    """Creates the registered model `name` unless it exists; True when it was created here."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(store_uri)
    try:
        store.create_registered_model(name, description=DESCRIPTION)
        return True
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_ALREADY_EXISTS":
            return False
        raise


def main() -> int:
    name = os.environ.get("MLFLOW_SERVED_MODEL_NAME", "").strip()
    uri = os.environ.get("MLFLOW_BACKEND_STORE_URI", "")
    if not name or not uri:
        log("ERROR: set MLFLOW_SERVED_MODEL_NAME and MLFLOW_BACKEND_STORE_URI")
        return 2
    created = reserve(uri, name)
    log(f"registered model {name} {'reserved for the model endpoint' if created else 'exists already'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
