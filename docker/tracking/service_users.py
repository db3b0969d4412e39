"""The MLflow users of the stack's own clients: the model endpoint's and the notebook session's.

With MLflow's own users (MLFLOW_AUTH=mlflow or oidc), the break-glass admin's login stays with the people
who may use it: the serving VM and the notebook session each log in as a user of their own, with a
password from a Vault secret of their own. The entrypoint runs this before the server starts, on every
start: each user is created unless it exists, made a non-admin and given the current password, so a new
version of its secret applies at the next start.

- the model endpoint's user (MLFLOW_SERVING_USERNAME, MLFLOW_SERVING_PASSWORD) gets READ on the registered
  model it serves (MLFLOW_SERVED_MODEL_NAME, reserved by served_model.py) and nothing else of its own: it
  never creates anything, and MLflow's default permission still applies to what others made;
- the notebook's user (MLFLOW_NOTEBOOK_USERNAME, MLFLOW_NOTEBOOK_PASSWORD) is an ordinary user: it logs
  runs and registers models like anyone with MLFLOW_AUTH_DEFAULT_PERMISSION.
A user whose name is not set is left alone. Neither may be the admin (MLFLOW_AUTH_ADMIN_USERNAME).

    python3 service_users.py     reads the settings above and MLFLOW_AUTH_DATABASE_URI
"""
import os
import sys
import time

# (the user's setting, its password's setting, what it is for)
USERS = (("MLFLOW_SERVING_USERNAME", "MLFLOW_SERVING_PASSWORD", "the model endpoint"),
         ("MLFLOW_NOTEBOOK_USERNAME", "MLFLOW_NOTEBOOK_PASSWORD", "the notebook session"))


class SettingsError(Exception):
    pass


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} service_users: {message}", file=sys.stderr, flush=True)


def wanted(env) -> list[tuple[str, str, str]]:
    """(username, password, purpose) of each user whose name is set; refuses a half-set or clashing one."""
    admin = (env.get("MLFLOW_AUTH_ADMIN_USERNAME") or "").strip()
    users, names = [], set()
    for name_setting, password_setting, purpose in USERS:
        username = (env.get(name_setting) or "").strip()
        password = env.get(password_setting) or ""
        if not username:
            if password:
                raise SettingsError(f"{password_setting} is set but {name_setting} is not")
            continue
        if not password:
            raise SettingsError(f"{name_setting} needs {password_setting} (or {password_setting}_SECRET_OCID)")
        if username.casefold() == admin.casefold():
            raise SettingsError(f"{name_setting} must not be the admin ({admin}): {purpose} gets a user of its own")
        if username.casefold() in names:
            raise SettingsError(f"{name_setting} names the same user as another setting ({username})")
        names.add(username.casefold())
        users.append((username, password, purpose))
    return users


def ensure_user(store, username: str, password: str) -> str:
    """Creates `username` as a non-admin with `password`, or makes the existing one so; says what it did."""
    from mlflow.exceptions import MlflowException

    if not store.has_user(username, use_primary=True):
        try:
            store.create_user(username, password, is_admin=False)
            return "created"
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":  # another replica created it just now
                raise
    same = store.authenticate_user(username, password, use_primary=True)
    if same and not store.get_user(username).is_admin:
        return "kept"
    store.update_user(username, password=None if same else password, is_admin=False)
    return "updated"


def main() -> int:
    env = os.environ
    try:
        users = wanted(env)
    except SettingsError as exc:
        log(f"ERROR: {exc}")
        return 2
    if not users:
        return 0
    uri = env.get("MLFLOW_AUTH_DATABASE_URI", "")
    if not uri:
        log("ERROR: set MLFLOW_AUTH_DATABASE_URI (the users' database)")
        return 2
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(uri)
    served = (env.get("MLFLOW_SERVED_MODEL_NAME") or "").strip()
    for username, password, purpose in users:
        done = ensure_user(store, username, password)
        log(f"user {username} ({purpose}, not an admin): {done}")
    serving = (env.get("MLFLOW_SERVING_USERNAME") or "").strip()
    if serving and served:
        # An upsert: the grant is READ at every start, whatever an admin changed it to.
        store.grant_user_permission(serving, "registered_model", served, "READ")
        log(f"user {serving} may read the registered model {served}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
