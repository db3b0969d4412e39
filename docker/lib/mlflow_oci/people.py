"""Who signs in through the identity provider, keyed by the claim that never changes (`sub`).

A person's readable name (preferred_username, else email) may change, be reused by someone else later or be
the name of an MLflow user created with a password. So each provider subject is mapped, once, to the MLflow
username it got at its first sign-in, in a table of the users' database:

  mlflow_oci_sso_people     subject -> username (unique): the users single sign-on created
  mlflow_oci_sso_adoptable  usernames single sign-on created before people were keyed by subject: the first
                            sign-in under that name takes it over, once (see `prepare`)
  mlflow_oci_migrations     one-time steps done

At a first sign-in the name must be free, compared as a person reads it (casefolded): single sign-on never
adopts a user it did not create (the first admin, a password user, a service login, another person).

    python3 -m mlflow_oci.people prepare     the entrypoint, before the server: creates the tables; on the
                                             first start of this version with MLFLOW_AUTH=oidc, the users
                                             that exist then become adoptable by their current name
"""
import logging
import os
import secrets
import sys
import time
import unicodedata

PEOPLE = "mlflow_oci_sso_people"
ADOPTABLE = "mlflow_oci_sso_adoptable"
MIGRATIONS = "mlflow_oci_migrations"
MIGRATION = "sso-people-keyed-by-subject"
# A mapping whose MLflow user is gone (an admin deleted the person) frees its name; one younger than this may
# belong to a first sign-in whose user is being created on another replica right now.
STALE_AFTER_SECONDS = 60

_logger = logging.getLogger("mlflow_oci.oidc_auth")  # the sign-in log


class NameTaken(Exception):
    """The wanted name belongs to an MLflow user single sign-on did not create for this person."""

    def __init__(self, existing: str):
        super().__init__(existing)
        self.existing = existing


def folded(name: str) -> str:
    """A name as a person reads it: NFKC, casefolded (Unicode's NFKC_Casefold, near enough)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def create_tables(connection) -> None:
    for statement in (
        f"CREATE TABLE IF NOT EXISTS {PEOPLE} (subject VARCHAR(255) NOT NULL PRIMARY KEY, "
        "username VARCHAR(255) NOT NULL UNIQUE, created_at DOUBLE NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {ADOPTABLE} (username VARCHAR(255) NOT NULL PRIMARY KEY)",
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS} (name VARCHAR(64) NOT NULL PRIMARY KEY, done_at DOUBLE NOT NULL)",
    ):
        connection.exec_driver_sql(statement)


def _usernames(connection) -> list[str]:
    from sqlalchemy import exc, text

    try:
        with connection.begin_nested():
            return [row[0] for row in connection.execute(text("SELECT username FROM users"))]
    except exc.SQLAlchemyError:  # a new SQLite users' database: MLflow creates its tables when it starts
        return []


def prepare(engine, mode: str, reserved: list[str]) -> int | None:
    """Creates the tables. Once per users' database: with single sign-on (mode "oidc") every user but the
    reserved ones (the first admin, the serving and notebook logins) becomes adoptable, as the earlier version
    created them by name; with MLflow's own passwords (a later switch to single sign-on must not take those over)
    none. Returns how many, None when done before."""
    from sqlalchemy import exc, text

    with engine.begin() as connection:
        create_tables(connection)
        try:
            with connection.begin_nested():
                connection.execute(text(f"INSERT INTO {MIGRATIONS} (name, done_at) VALUES (:n, :t)"),
                                   {"n": MIGRATION, "t": time.time()})
        except exc.IntegrityError:
            return None
        if mode != "oidc":
            return 0
        kept = {folded(name) for name in reserved if name}
        names = [name for name in _usernames(connection) if folded(name) not in kept]
        for name in names:
            connection.execute(text(f"INSERT INTO {ADOPTABLE} (username) VALUES (:u)"), {"u": name})
        return len(names)


class People:
    """Maps provider subjects to MLflow users in MLflow's auth store (its SqlAlchemyStore)."""

    def __init__(self, store, clock=time.time):
        self.store, self.clock = store, clock
        self._tables_ready = False

    def _ensure_tables(self, connection) -> None:
        if not self._tables_ready:  # `prepare` made them on the VMs; a process started otherwise makes them here
            create_tables(connection)
            self._tables_ready = True

    def username_for(self, subject: str, wanted: str, is_admin: bool) -> str:
        """The MLflow username of `subject`, created on its first sign-in as `wanted`; its admin flag follows
        `is_admin`. NameTaken when `wanted` is someone else's."""
        from sqlalchemy import text

        with self.store.engine.begin() as connection:
            self._ensure_tables(connection)
            row = connection.execute(text(f"SELECT username FROM {PEOPLE} WHERE subject = :s"), {"s": subject}).first()
        if row is None:
            return self._first_sign_in(subject, wanted, is_admin)
        username = row[0]
        if not self.store.has_user(username):  # an admin deleted the user: the person comes back as new
            self._create_user(username, is_admin)
        elif self.store.get_user(username).is_admin != is_admin:
            self.store.update_user(username, is_admin=is_admin)
            _logger.info("%s is now admin=%s (groups)", username, is_admin)
        return username

    def subject_of(self, username: str) -> str | None:
        """The provider subject an MLflow user belongs to (None: a user of no person, e.g. the first admin)."""
        from sqlalchemy import text

        with self.store.engine.begin() as connection:
            self._ensure_tables(connection)
            row = connection.execute(text(f"SELECT subject FROM {PEOPLE} WHERE username = :u"),
                                     {"u": username}).first()
        return row[0] if row else None

    def _first_sign_in(self, subject: str, wanted: str, is_admin: bool) -> str:
        from sqlalchemy import exc, text

        raced = False
        with self.store.engine.begin() as connection:
            existing = next((name for name in _usernames(connection) if folded(name) == folded(wanted)), None)
            adopted = existing is not None and connection.execute(
                text(f"DELETE FROM {ADOPTABLE} WHERE username = :u"), {"u": existing}).rowcount == 1
            if existing is not None and not adopted:
                raise NameTaken(existing)
            username = existing or wanted
            if not adopted:  # the name of a person whose user an admin deleted is free again
                connection.execute(text(f"DELETE FROM {PEOPLE} WHERE username = :u AND created_at < :t"),
                                   {"u": username, "t": self.clock() - STALE_AFTER_SECONDS})
            try:
                with connection.begin_nested():
                    connection.execute(text(f"INSERT INTO {PEOPLE} (subject, username, created_at) "
                                            "VALUES (:s, :u, :t)"), {"s": subject, "u": username, "t": self.clock()})
            except exc.IntegrityError:
                mapped = connection.execute(text(f"SELECT username FROM {PEOPLE} WHERE subject = :s"),
                                            {"s": subject}).first()
                if mapped is None:  # another subject took the name a moment ago
                    raise NameTaken(username) from None
                raced = True  # another replica signed this person in a moment ago
        if raced:
            return self.username_for(subject, wanted, is_admin)
        if adopted:
            _logger.info("%s is now the MLflow user of subject %s (adopted by name, once)", username, subject)
            if self.store.get_user(username).is_admin != is_admin:
                self.store.update_user(username, is_admin=is_admin)
        else:
            self._create_user(username, is_admin)
        return username

    def _create_user(self, username: str, is_admin: bool) -> None:
        from mlflow.exceptions import MlflowException

        try:
            # A password nobody knows: the person signs in through the provider (an admin may set one later).
            self.store.create_user(username, secrets.token_urlsafe(32), is_admin)
            _logger.info("created MLflow user %s (admin=%s)", username, is_admin)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            # created a moment ago by another replica for this same person (the mapping is unique)
            if self.store.get_user(username).is_admin != is_admin:
                self.store.update_user(username, is_admin=is_admin)


def main(argv: list[str]) -> int:
    if argv != ["prepare"]:
        print("usage: python3 -m mlflow_oci.people prepare", file=sys.stderr)
        return 2
    import sqlalchemy

    uri = os.environ.get("MLFLOW_AUTH_DATABASE_URI", "")
    if not uri:
        print("set MLFLOW_AUTH_DATABASE_URI", file=sys.stderr)
        return 2
    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    try:
        reserved = [os.environ.get(name, "") for name in
                    ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_SERVING_USERNAME", "MLFLOW_NOTEBOOK_USERNAME")]
        adoptable = prepare(engine, os.environ.get("MLFLOW_AUTH", ""), reserved)
    finally:
        engine.dispose()
    if adoptable:
        print(f"single sign-on: {adoptable} existing users are taken over once, by the first sign-in under "
              "their name; later sign-ins are matched by the provider's subject")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
