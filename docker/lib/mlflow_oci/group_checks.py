"""When a signed-in person's groups are asked again. A browser session is good for hours; the person may
leave MLFLOW_OIDC_ADMIN_GROUP or MLFLOW_OIDC_USER_GROUP long before. At sign-in the provider's refresh token
is kept here, and once the last check is older than MLFLOW_OIDC_GROUP_CHECK_SECONDS (900, at most 900) one
replica trades it for new tokens and reads the groups again (oidc_auth.py): no longer in a group, the
refresh refused or no refresh token to ask with, and the person is signed out everywhere (signouts.py).

  mlflow_oci_sso_refresh   subject -> the latest refresh token of that person, when it was last checked

The token is useless without the application's client secret (RFC 6749 section 6: a confidential client
authenticates to refresh), which is in Vault, not in this database.
"""
import threading
import time

TABLE = "mlflow_oci_sso_refresh"
CHECK_SECONDS = 900
RETRY_SECONDS = 60      # after the provider did not answer: the next try (the session goes on meanwhile)


class Due:
    """What `due` answers: FRESH (checked recently), NOTHING (no refresh token), or a token to check with."""
    FRESH = "fresh"
    NOTHING = "nothing"


class GroupChecks:
    def __init__(self, engine, check_seconds: float = CHECK_SECONDS, clock=time.time):
        self.engine, self.check_seconds, self.clock = engine, check_seconds, clock
        self._fresh_until: dict[str, float] = {}   # subject -> when this process asks the database again
        self._lock = threading.Lock()
        self._table_ready = False

    def _ensure_table(self, connection) -> None:
        if not self._table_ready:
            connection.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {TABLE} (subject VARCHAR(255) NOT NULL PRIMARY "
                                       "KEY, refresh_token TEXT NOT NULL, checked_at DOUBLE NOT NULL)")
            self._table_ready = True

    def keep(self, subject: str, refresh_token: str | None) -> None:
        """The groups were just read (a sign-in, or a check): this refresh token (None: the provider gave none)
        replaces the last, and the next check is a whole interval away."""
        self._write(subject, refresh_token, self.clock())

    def retry_soon(self, subject: str) -> None:
        """The provider did not answer: ask again after RETRY_SECONDS, not after a whole interval."""
        from sqlalchemy import text

        at = self.clock() - self.check_seconds + RETRY_SECONDS
        with self.engine.begin() as connection:
            self._ensure_table(connection)
            connection.execute(text(f"UPDATE {TABLE} SET checked_at = :t WHERE subject = :s"), {"t": at, "s": subject})
        with self._lock:
            self._fresh_until[subject] = at + self.check_seconds

    def forget(self, subject: str) -> None:
        self._write(subject, None, 0)

    def _write(self, subject: str, refresh_token: str | None, at: float) -> None:
        from sqlalchemy import exc, text

        params = {"s": subject, "r": refresh_token, "t": at}
        update = text(f"UPDATE {TABLE} SET refresh_token = :r, checked_at = :t WHERE subject = :s")
        with self.engine.begin() as connection:
            self._ensure_table(connection)
            if not refresh_token:
                connection.execute(text(f"DELETE FROM {TABLE} WHERE subject = :s"), params)
            elif not connection.execute(update, params).rowcount:
                try:
                    with connection.begin_nested():
                        connection.execute(text(f"INSERT INTO {TABLE} (subject, refresh_token, checked_at) "
                                                "VALUES (:s, :r, :t)"), params)
                except exc.IntegrityError:  # the same person signed in on another replica a moment ago
                    connection.execute(update, params)
        with self._lock:
            self._fresh_until[subject] = at + self.check_seconds if refresh_token else 0

    def due(self, subject: str) -> str:
        """Due.FRESH, Due.NOTHING, or the refresh token this replica is to check with now: of several
        replicas asking at once, one gets it (the others go on as FRESH while it asks)."""
        from sqlalchemy import text

        now = self.clock()
        with self._lock:
            if now < self._fresh_until.get(subject, 0):
                return Due.FRESH
        with self.engine.begin() as connection:
            self._ensure_table(connection)
            row = connection.execute(text(f"SELECT refresh_token, checked_at FROM {TABLE} WHERE subject = :s"),
                                     {"s": subject}).first()
            if row is None:
                return Due.NOTHING
            token, checked_at = row
            if now - checked_at < self.check_seconds:
                with self._lock:
                    self._fresh_until[subject] = checked_at + self.check_seconds
                return Due.FRESH
            claimed = connection.execute(
                text(f"UPDATE {TABLE} SET checked_at = :now WHERE subject = :s AND checked_at = :then"),
                {"now": now, "s": subject, "then": checked_at}).rowcount == 1
        if not claimed:
            return Due.FRESH
        return token
