"""The `mlflow.tracking_store` entry point for `mysql` URIs (declared in mlflow_oci-0.dist-info).

MLflow loads its entry points while `mlflow.tracking` itself is still importing, so this module imports nothing
of MLflow until a store is built."""
import os


def build(store_uri, artifact_uri=None):
    """What MLflow's server would build (its read replica included), with run_search.LeanSearchStore in place of
    a plain SqlAlchemyStore; with workspaces on, MLflow's own workspace-aware store. In a server worker it also
    makes the responses compact JSON (compact_json.py): the store is built once per worker, before its first
    answer."""
    from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
    from mlflow.server.constants import READ_REPLICA_BACKEND_STORE_URI_ENV_VAR
    from mlflow.tracking._tracking_service import utils

    from mlflow_oci import compact_json

    compact_json.install()

    if MLFLOW_ENABLE_WORKSPACES.get():
        return utils._get_sqlalchemy_store(store_uri, artifact_uri)
    from mlflow_oci.run_search import LeanSearchStore

    if artifact_uri is None:
        artifact_uri = os.environ.get(utils._SERVER_ARTIFACT_ROOT_ENV_VAR, utils.DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
    return LeanSearchStore(store_uri, artifact_uri,
                           read_db_uri=os.environ.get(READ_REPLICA_BACKEND_STORE_URI_ENV_VAR) or None)
