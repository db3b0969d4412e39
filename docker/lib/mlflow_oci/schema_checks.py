"""What in a MySQL database would make an MLflow schema migration fail, found before it runs, each with its fix.

- A table or column not in utf8mb4 (utf8mb3 = MySQL's `utf8`): MLflow creates its tables in utf8mb4, and MySQL
  refuses a foreign key between columns of different character sets ("Referencing column and referenced
  column are incompatible", mlflow/mlflow#9484), so a migration that adds one to such a table stops halfway.
- A utf8mb4 table whose foreign key already references a utf8mb3 one: the same mismatch, named as such.
- A table without a primary key: HeatWave with high availability sets sql_require_primary_key, so a
  migration that copies such a table is refused, and replication needs one anyway.

`find_problems(execute, database, primary_keys)` reads information_schema only; `execute(sql, params)` returns
rows. `primary_keys` maps a table to the key MLflow's models define, so the fix can name its columns.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

WANTED_CHARSET = "utf8mb4"
DEFAULT_COLLATION = "utf8mb4_bin"  # what init_db.py creates MLflow's database with


@dataclass(frozen=True)
class Problem:
    kind: str    # charset | foreign-key-charset | primary-key
    table: str
    what: str    # one sentence: what is wrong and why the migration would fail
    fix: str     # SQL to run, as MLflow's database user, after a backup

    def as_dict(self) -> dict:
        return {"kind": self.kind, "table": self.table, "what": self.what, "fix": self.fix}


def _table_charsets(execute, database) -> dict[str, str]:
    rows = execute(
        "SELECT t.TABLE_NAME, c.CHARACTER_SET_NAME FROM information_schema.TABLES t "
        "JOIN information_schema.COLLATION_CHARACTER_SET_APPLICABILITY c ON c.COLLATION_NAME = t.TABLE_COLLATION "
        "WHERE t.TABLE_SCHEMA = %s AND t.TABLE_TYPE = 'BASE TABLE'", (database,))
    return {table: charset for table, charset in rows}


def _odd_columns(execute, database) -> dict[str, list[str]]:
    rows = execute(
        "SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND CHARACTER_SET_NAME IS NOT NULL AND CHARACTER_SET_NAME <> %s "
        "ORDER BY TABLE_NAME, ORDINAL_POSITION", (database, WANTED_CHARSET))
    columns = defaultdict(list)
    for table, column, charset in rows:
        columns[table].append(f"{column} ({charset})")
    return columns


def _foreign_keys(execute, database) -> list[tuple[str, str]]:
    """(referencing table, referenced table) of every foreign key inside the database."""
    rows = execute(
        "SELECT DISTINCT TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE "
        "WHERE TABLE_SCHEMA = %s AND REFERENCED_TABLE_SCHEMA = %s AND REFERENCED_TABLE_NAME IS NOT NULL",
        (database, database))
    return [(table, referenced) for table, referenced in rows]


def _tables_without_primary_key(execute, database) -> list[str]:
    rows = execute(
        "SELECT t.TABLE_NAME FROM information_schema.TABLES t LEFT JOIN information_schema.TABLE_CONSTRAINTS k "
        "ON k.TABLE_SCHEMA = t.TABLE_SCHEMA AND k.TABLE_NAME = t.TABLE_NAME AND k.CONSTRAINT_TYPE = 'PRIMARY KEY' "
        "WHERE t.TABLE_SCHEMA = %s AND t.TABLE_TYPE = 'BASE TABLE' AND k.CONSTRAINT_NAME IS NULL "
        "ORDER BY t.TABLE_NAME", (database,))
    return [row[0] for row in rows]


def _linked(table: str, foreign_keys: list[tuple[str, str]]) -> list[str]:
    """The table and every table a chain of foreign keys links it to: they change character set together."""
    neighbours = defaultdict(set)
    for a, b in foreign_keys:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen, todo = {table}, [table]
    while todo:
        for other in neighbours[todo.pop()] - seen:
            seen.add(other)
            todo.append(other)
    return sorted(seen)


def _convert_sql(tables: list[str]) -> str:
    # Foreign key checks off for the session only: MySQL refuses to convert one side of a key before the other.
    lines = ["SET FOREIGN_KEY_CHECKS = 0;"]
    lines += [f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET {WANTED_CHARSET} COLLATE {DEFAULT_COLLATION};"
              for table in tables]
    lines.append("SET FOREIGN_KEY_CHECKS = 1;")
    return "\n".join(lines)


def find_problems(execute, database: str, primary_keys: dict[str, list[str]] | None = None) -> list[Problem]:
    primary_keys = primary_keys or {}
    charsets = _table_charsets(execute, database)
    columns = _odd_columns(execute, database)
    foreign_keys = _foreign_keys(execute, database)
    problems: list[Problem] = []
    converted: dict[str, str] = {}  # table -> the table whose fix converts it too
    for table in sorted(charsets):
        if charsets[table] == WANTED_CHARSET and table not in columns:
            continue
        group = _linked(table, foreign_keys)
        details = f"table default {charsets[table]}" if charsets[table] != WANTED_CHARSET else "table default utf8mb4"
        if table in columns:
            details += "; columns " + ", ".join(columns[table])
        problems.append(Problem(
            "charset", table,
            f"table `{table}` is not in {WANTED_CHARSET} ({details}): a migration that adds a foreign key to it "
            "from a utf8mb4 table fails halfway on MySQL (mlflow/mlflow#9484)",
            f"converted with `{converted[table]}` (its fix above)" if table in converted else _convert_sql(group)))
        converted.update({other: converted.get(table, table) for other in group})
    for referencing, referenced in sorted(set(foreign_keys)):
        if charsets.get(referencing) == WANTED_CHARSET and charsets.get(referenced) not in (WANTED_CHARSET, None):
            problems.append(Problem(
                "foreign-key-charset", referencing,
                f"utf8mb4 table `{referencing}` references {charsets[referenced]} table `{referenced}`: the keys "
                "compare across character sets, and MySQL refuses any new foreign key between them",
                f"convert `{referenced}` as shown for it above"))
    for table in _tables_without_primary_key(execute, database):
        key = primary_keys.get(table)
        fix = (f"ALTER TABLE `{table}` ADD PRIMARY KEY ({', '.join(f'`{c}`' for c in key)});" if key else
               f"-- `{table}` is not one of MLflow's tables: add a primary key to it, or move it out of this database")
        problems.append(Problem(
            "primary-key", table,
            f"table `{table}` has no primary key: with sql_require_primary_key (HeatWave high availability) "
            "MySQL refuses a migration that rebuilds it",
            fix))
    return problems
