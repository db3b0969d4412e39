"""What an upgrade of MLflow will do to this database, found out before it does it.

    python3 -m mlflow_oci.schema_plan [--json]     MLFLOW_BACKEND_STORE_URI: the database (as the server has it)
                                                   MLFLOW_DB_REHEARSAL_NAME: the scratch database (<name>_rehearsal)

Run with the MLflow the database is upgraded TO (the new image): it knows the migrations.
1. From -> to: the database's Alembic revision (with the MLflow version that last migrated it, from the journal,
   else the release whose head it is) and this MLflow's head.
2. The pending revisions in order, each rehearsed on an empty copy of the schema in the scratch database (its
   tables made with SHOW CREATE TABLE, no rows), so each is classed by the statements MySQL really gets:
   slow when it rewrites or indexes a large table (metrics, params, tags, latest_metrics; rows estimated),
   breaking when it drops or changes a column or key (the previous version may not run on the result: going
   back needs the backup). A revision that fails on the copy would fail on the real schema.
3. The pre-checks on the real database (mlflow_oci.schema_checks).
Exit 0: the upgrade may go on; 3: a pre-check or the rehearsal says it would fail (the report says how to fix
it); 2: the database cannot be read. Nothing here writes to the real database.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field

from mlflow_oci import migration_journal, schema_checks

LARGE_TABLES = ("metrics", "params", "tags", "latest_metrics")
# The head revision of each MLflow minor release (its store/db_migrations), to name a database's version
# when the journal does not know it (a database made before the journal existed).
RELEASE_HEADS = {"6f8d9c3b2a1e": "3.15", "b7e2c1a4d9f3": "3.16", "dc11669786a5": "3.17"}
EXIT_REFUSED = 3

_TABLE_OF = re.compile(
    r"^\s*(?:ALTER\s+TABLE|CREATE\s+(?:UNIQUE\s+)?INDEX\s+\S+\s+ON|DROP\s+INDEX\s+\S+\s+ON|UPDATE|DELETE\s+FROM|"
    r"INSERT\s+INTO|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?|RENAME\s+TABLE)\s+`?(\w+)`?",
    re.IGNORECASE)
_BREAKING = re.compile(
    r"^\s*(?:DROP\s+TABLE|RENAME\s+TABLE|DROP\s+INDEX)\b|"
    r"\b(?:DROP\s+(?:COLUMN|PRIMARY\s+KEY|FOREIGN\s+KEY|INDEX|KEY|CONSTRAINT|CHECK)|MODIFY|CHANGE|RENAME)\b",
    re.IGNORECASE)
_REWRITES = re.compile(r"^\s*(?:ALTER\s+TABLE|CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX|UPDATE|DELETE|INSERT)\b",
                       re.IGNORECASE)
_BOOKKEEPING = re.compile(r"^\s*(?:SELECT|SHOW|DESCRIBE|SET|DO\s+0|COMMIT|ROLLBACK)\b", re.IGNORECASE)


@dataclass
class Step:
    revision: str
    title: str
    slow: bool = False
    breaking: bool = False
    tables: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)
    statements: int = 0


@dataclass
class Plan:
    database: str
    from_revision: str | None
    from_mlflow: str
    to_revision: str
    to_mlflow: str
    steps: list[Step]
    problems: list[dict]
    seconds: float = 0.0

    @property
    def refused(self) -> bool:
        return bool(self.problems)

    def as_dict(self) -> dict:
        return {**asdict(self), "refused": self.refused}


def classify(revision: str, title: str, statements: list[str], rows: dict[str, int]) -> Step:
    """A revision's step from the SQL it sent (bookkeeping statements left out)."""
    step = Step(revision, title)
    for statement in statements:
        if "alembic_version" in statement or (_BOOKKEEPING.search(statement.split("\n", 1)[0])
                                                and not _REWRITES.match(statement)):
            continue
        step.statements += 1
        match = _TABLE_OF.match(statement)
        table = match.group(1) if match else None
        if table and table not in step.tables:
            step.tables.append(table)
        first_line = " ".join(statement.split())[:160]
        if table in LARGE_TABLES and _REWRITES.match(statement):
            step.slow = True
            step.why.append(f"slow: {first_line} (`{table}`: about {rows.get(table, 0):,} rows)")
        if _BREAKING.search(statement):
            step.breaking = True
            step.why.append(f"breaking: {first_line}")
    return step


def _scratch_url(url, name: str):
    return url.set(database=name)


def copy_schema(engine, scratch_engine) -> None:
    """The real database's tables, empty, in the scratch database (emptied first), and its revision."""
    with engine.connect() as source, scratch_engine.begin() as scratch:
        scratch.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
        for (table,) in scratch.exec_driver_sql(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()").fetchall():
            scratch.exec_driver_sql(f"DROP TABLE IF EXISTS `{table}`")
        tables = [row[0] for row in source.exec_driver_sql(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_TYPE = 'BASE TABLE'").fetchall()]
        for table in tables:
            create = source.exec_driver_sql(f"SHOW CREATE TABLE `{table}`").fetchone()[1]
            scratch.exec_driver_sql(re.sub(r"\sAUTO_INCREMENT=\d+", "", create).replace("%", "%%"))
        revision = source.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        scratch.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (%s)", (revision,))
        scratch.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")


def _large_table_rows(engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()").fetchall()
    return {table: int(count or 0) for table, count in rows if table in LARGE_TABLES}


def _scripts():
    """This MLflow's migration scripts (alembic's ScriptDirectory)."""
    from alembic.script import ScriptDirectory
    from mlflow.store.db import utils as db_utils

    return ScriptDirectory.from_config(db_utils._get_alembic_config(db_url=""))


def pending_revisions(current: str | None) -> list:
    """This MLflow's revisions after `current`, oldest first (alembic Script objects)."""
    scripts = _scripts()
    return list(reversed(list(scripts.iterate_revisions(scripts.get_current_head(), current))))


def known_revision(revision: str) -> bool:
    return any(script.revision == revision for script in _scripts().walk_revisions())


def rehearse(scratch_engine, revisions, rows) -> tuple[list[Step], dict | None]:
    """Runs each revision on the scratch copy, recording what it sends; stops at the first that fails."""
    import sqlalchemy
    from alembic import command
    from mlflow.store.db import utils as db_utils

    from mlflow_oci.mysql_ddl import install_statement_rewrites

    install_statement_rewrites()
    sent: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    sqlalchemy.event.listen(scratch_engine, "after_cursor_execute", remember)
    steps = []
    try:
        for script in revisions:
            sent.clear()
            config = db_utils._get_alembic_config(scratch_engine.url.render_as_string(hide_password=False))
            try:
                with scratch_engine.begin() as connection:
                    config.attributes["connection"] = connection
                    command.upgrade(config, script.revision)
            except Exception as exc:  # the rehearsal's verdict: this revision cannot run on this schema
                reason = getattr(exc, "orig", None) or exc
                return steps, {"kind": "rehearsal", "table": "", "fix": "",
                               "what": f"revision {script.revision} ({_title(script)}) fails on a copy of this "
                                       f"schema: {reason}"}
            steps.append(classify(script.revision, _title(script), list(sent), rows))
    finally:
        sqlalchemy.event.remove(scratch_engine, "after_cursor_execute", remember)
    return steps, None


def _title(script) -> str:
    return (script.doc or "").strip().splitlines()[0] if script.doc else script.revision


def mlflow_primary_keys() -> dict[str, list[str]]:
    """Each MLflow table's primary key, from MLflow's own models."""
    import mlflow.store.model_registry.dbmodels.models  # noqa: F401  (registers the registry's tables)
    import mlflow.store.tracking.dbmodels.models  # noqa: F401
    from mlflow.store.db.base_sql_model import Base

    return {name: [column.name for column in table.primary_key.columns] for name, table in Base.metadata.tables.items()}


def make_plan(uri: str, scratch_name: str) -> Plan:
    import mlflow
    import sqlalchemy
    from mlflow.store.db import utils as db_utils

    started = time.monotonic()
    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    scratch = sqlalchemy.create_engine(_scratch_url(engine.url, scratch_name), poolclass=sqlalchemy.pool.NullPool)
    try:
        current = db_utils._get_schema_version(engine)
        head = db_utils._get_latest_schema_revision()
        served = migration_journal.last_served_version(engine)
        from_mlflow = served or RELEASE_HEADS.get(current or "", "unknown")
        with engine.connect() as connection:
            def execute(sql, params=None):
                return connection.exec_driver_sql(sql, params).fetchall()

            problems = [p.as_dict() for p in schema_checks.find_problems(execute, engine.url.database,
                                                                          mlflow_primary_keys())]
        blocked = migration_journal.blocking_entry(engine)
        if blocked:
            problems.insert(0, {"kind": "half-migrated", "table": "", "fix": "restore the backup taken before it",
                                "what": f"an earlier {blocked.describe()}"})
        steps: list[Step] = []
        if current and not known_revision(current):
            problems.insert(0, {"kind": "newer-schema", "table": "", "fix": "",
                                "what": f"the database is at revision {current}, which MLflow {mlflow.__version__} "
                                        "does not know: a newer MLflow migrated it; going back needs the backup "
                                        "taken before that upgrade"})
        elif current != head and not problems:
            revisions = pending_revisions(current)
            copy_schema(engine, scratch)
            steps, failure = rehearse(scratch, revisions, _large_table_rows(engine))
            if failure:
                problems.append(failure)
        elif current != head:
            steps = [Step(script.revision, _title(script)) for script in pending_revisions(current)]
        return Plan(engine.url.database, current, from_mlflow, head, mlflow.__version__, steps, problems,
                    round(time.monotonic() - started, 2))
    finally:
        engine.dispose()
        scratch.dispose()


def describe(plan: Plan) -> str:
    lines = [f"MLflow {plan.from_mlflow} (revision {plan.from_revision}) -> {plan.to_mlflow} "
             f"(revision {plan.to_revision}) in `{plan.database}`"]
    if not plan.steps and not plan.problems:
        lines.append("no migration pending")
    for step in plan.steps:
        marks = ", ".join(m for m, on in (("slow", step.slow), ("breaking", step.breaking)) if on) or "quick"
        lines.append(f"  {step.revision} {step.title} [{marks}]")
        lines += [f"      {why}" for why in step.why]
    for problem in plan.problems:
        lines.append(f"REFUSED: {problem['what']}")
        if problem.get("fix"):
            lines += [f"    {line}" for line in problem["fix"].splitlines()]
    return "\n".join(lines)


# Run Command returns only the last 1 KB of a command's output (OCI, "Running Commands on an Instance").
WIRE_LIMIT = 1000


def wire_format(plan: Plan, limit: int = WIRE_LIMIT) -> str:
    """The plan as one line of at most `limit` bytes for the laptop, as JSON or, when that is too long,
    zlib-compressed and base64'd ({"z": ...}). What does not fit goes, in this order: the steps' titles, the
    tables of quick steps, the length of the problems' text (the VM's log has the whole plan: "shortened")."""
    import base64
    import zlib

    document = {"database": plan.database, "from_revision": plan.from_revision, "from_mlflow": plan.from_mlflow,
                "to_revision": plan.to_revision, "to_mlflow": plan.to_mlflow, "refused": plan.refused,
                "steps": [{"revision": s.revision, "title": s.title, "slow": s.slow, "breaking": s.breaking,
                           "tables": s.tables} for s in plan.steps],
                "problems": plan.problems}

    def without_titles(doc):
        for step in doc["steps"]:
            step.pop("title", None)

    def quick_steps_bare(doc):
        doc["steps"] = [step if step["slow"] or step["breaking"] else {"revision": step["revision"]}
                        for step in doc["steps"]]

    def short_problems(doc):
        doc["problems"] = [{**p, "what": p["what"][:160], "fix": p["fix"][:200]} for p in doc["problems"]]

    for shrink in (None, without_titles, quick_steps_bare, short_problems):
        if shrink:
            shrink(document)
            document["shortened"] = True
        line = json.dumps(document, separators=(",", ":"))
        if len(line) <= limit:
            return line
        packed = json.dumps({"z": base64.b64encode(zlib.compress(line.encode(), 9)).decode()}, separators=(",", ":"))
        if len(packed) <= limit:
            return packed
    raise ValueError(f"the plan does not fit in {limit} bytes even shortened ({len(plan.steps)} steps)")


def read_wire_format(line: str) -> dict:
    import base64
    import zlib

    document = json.loads(line)
    if "z" in document:
        document = json.loads(zlib.decompress(base64.b64decode(document["z"])))
    return document


def main(argv: list[str]) -> int:
    uri = os.environ.get("MLFLOW_BACKEND_STORE_URI", "")
    if not uri.startswith("mysql"):
        print("schema_plan: MLFLOW_BACKEND_STORE_URI must be the mysql+pymysql:// URI of the MLflow database",
              file=sys.stderr)
        return 2
    import sqlalchemy

    database = sqlalchemy.engine.make_url(uri).database
    try:
        plan = make_plan(uri, os.environ.get("MLFLOW_DB_REHEARSAL_NAME") or f"{database}_rehearsal")
    except sqlalchemy.exc.SQLAlchemyError as exc:
        print(f"schema_plan: cannot read the database: {getattr(exc, 'orig', None) or exc}", file=sys.stderr)
        return 2
    # The whole plan for the log (stderr), then with --json one short line last: Run Command returns stdout
    # and stderr together, and only their end.
    print(describe(plan), file=sys.stderr if "--json" in argv else sys.stdout, flush=True)
    if "--json" in argv:
        print(wire_format(plan), flush=True)
    return EXIT_REFUSED if plan.refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
