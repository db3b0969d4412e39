"""Sign-outs every replica obeys. When a person signs out, or an admin signs them out, the time goes into
the users' database; a session issued before it is refused by every replica. A replica asks the database
again once its answer is older than the check interval (MLFLOW_OIDC_SIGNOUT_CHECK_SECONDS, 30 by default,
at most 60): that is the longest a stolen session cookie lasts after its owner signed out.
"""
import threading
import time

TABLE = "mlflow_oci_signouts"
CHECK_SECONDS = 30
MAX_CHECK_SECONDS = 60   # the product's deadline for a sign-out to reach every replica


class SignOuts:
    """The last sign-out of each person, in a table of the users' database (MySQL, or SQLite on a laptop)."""

    def __init__(self, engine, check_seconds: float = CHECK_SECONDS, clock=time.time):
        self.engine, self.check_seconds, self.clock = engine, check_seconds, clock
        self._known: dict[str, tuple[float, float]] = {}   # username -> (signed out at, asked at: monotonic)
        self._lock = threading.Lock()
        self._table_ready = False

    def _ensure_table(self, connection) -> None:
        if not self._table_ready:  # the users' database's own collation (NO PAD on MySQL) applies
            connection.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {TABLE} (username VARCHAR(255) NOT NULL "
                                       "PRIMARY KEY, signed_out_at DOUBLE NOT NULL)")
            self._table_ready = True

    def last(self, username: str) -> float:
        """When `username` last signed out (0 when never), at most check_seconds old."""
        from sqlalchemy import text

        with self._lock:
            known = self._known.get(username)
        if known and time.monotonic() - known[1] < self.check_seconds:
            return known[0]
        with self.engine.begin() as connection:
            self._ensure_table(connection)
            row = connection.execute(text(f"SELECT signed_out_at FROM {TABLE} WHERE username = :u"),
                                     {"u": username}).first()
        value = float(row[0]) if row else 0.0
        with self._lock:
            self._known[username] = (value, time.monotonic())
        return value

    def record(self, username: str) -> float:
        """Signs `username` out of every session issued until now; returns the time recorded."""
        from sqlalchemy import exc, text

        now = self.clock()
        update = text(f"UPDATE {TABLE} SET signed_out_at = :t WHERE username = :u")
        params = {"t": now, "u": username}
        with self.engine.begin() as connection:
            self._ensure_table(connection)
            if not connection.execute(update, params).rowcount:
                try:
                    with connection.begin_nested():
                        connection.execute(text(f"INSERT INTO {TABLE} (username, signed_out_at) VALUES (:u, :t)"),
                                           params)
                except exc.IntegrityError:  # another replica recorded one a moment ago
                    connection.execute(update, params)
        with self._lock:
            self._known[username] = (now, time.monotonic())
        return now
