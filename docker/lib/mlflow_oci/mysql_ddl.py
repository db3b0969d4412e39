"""Rewrites of MLflow's migration statements that MySQL (HeatWave) and MariaDB would refuse, applied as
they are sent, on every SQLAlchemy engine of the process (the auth app's migrations open their own):

- Some MLflow migrations drop a primary key and add the new one in a second statement, which MySQL refuses
  with sql_require_primary_key=ON (HeatWave HA) and MariaDB with innodb_force_primary_key=ON: each such
  pair is sent as one ALTER TABLE, so the table is never without a primary key.
- MLflow's auth app names the user foreign key of two tables alike (see unique_foreign_key_names).
"""
import re

ALTER_TABLE = re.compile(r"^\s*ALTER\s+TABLE\s+(`?[\w.]+`?)\s+(.*)$", re.IGNORECASE | re.DOTALL)
DROP_PRIMARY_KEY = re.compile(r"^DROP\s+PRIMARY\s+KEY\s*$", re.IGNORECASE)


class PrimaryKeySwapMerger:
    """Holds back `ALTER TABLE t DROP PRIMARY KEY` and sends it with the next ALTER TABLE of t."""

    def __init__(self):
        self.pending_table = None

    def rewrite(self, statement: str) -> str:
        match = ALTER_TABLE.match(statement)
        if match and DROP_PRIMARY_KEY.match(match.group(2)):
            self.pending_table = match.group(1)
            return "DO 0"  # a no-op statement; the drop travels with the next ALTER
        if self.pending_table is None:
            return statement
        table, self.pending_table = self.pending_table, None
        if not (match and match.group(1) == table):
            raise RuntimeError(f"migration dropped the primary key of {table} without re-adding it "
                               f"in the next statement: {statement[:120]}")
        return f"ALTER TABLE {table} DROP PRIMARY KEY, {match.group(2)}"


CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+`?(\w+)`?", re.IGNORECASE)
SHARED_FOREIGN_KEY = re.compile(r"\bCONSTRAINT\s+`?fk_user_id`?\s+FOREIGN\s+KEY", re.IGNORECASE)


def unique_foreign_key_names(statement: str) -> str:
    """MLflow's auth app names the user foreign key of two tables `fk_user_id`; MySQL and MariaDB want
    constraint names unique in a database and refuse the second table (mlflow/mlflow#9642, #10964).
    Each table's key is named after its table instead; no later migration refers to the name."""
    match = CREATE_TABLE.match(statement)
    if not match or not SHARED_FOREIGN_KEY.search(statement):
        return statement
    return SHARED_FOREIGN_KEY.sub(f"CONSTRAINT fk_{match.group(1)}_user_id FOREIGN KEY", statement)


_rewrites_installed = False


def install_statement_rewrites() -> None:
    """Rewrites migration statements MySQL would refuse (see PrimaryKeySwapMerger and
    unique_foreign_key_names) as they are sent, on every engine of this process: the auth app's
    migrations open an engine of their own."""
    global _rewrites_installed
    if _rewrites_installed:
        return
    import sqlalchemy
    from sqlalchemy import event

    merger = PrimaryKeySwapMerger()

    @event.listens_for(sqlalchemy.engine.Engine, "before_cursor_execute", retval=True)
    def _rewrite(conn, cursor, statement, parameters, context, executemany):
        return merger.rewrite(unique_foreign_key_names(statement)), parameters

    _rewrites_installed = True


