"""Deletes rows and every row that refers to them, children first, in small committed steps.

MLflow's own `gc` deletes a run's metrics, params, tags and latest metrics and then the run; any other table
that refers to runs or experiments through a foreign key (more of them with each MLflow release) makes MySQL
refuse the delete. Here the foreign keys are read from the database itself, so whatever MLflow adds is
followed. Each statement deletes at most `step` rows (MySQL's DELETE ... LIMIT) and is committed on its own:
a run with millions of metric values never becomes one huge transaction, memory holds one step of keys,
and an interrupted purge leaves only rows a rerun finds again (the parent row goes last).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import islice

import sqlalchemy as sa

STEP = 5000


@dataclass(frozen=True)
class Reference:
    """`child.columns` refer to `parent_columns` of the parent table."""
    child: sa.Table
    columns: tuple[str, ...]
    parent_columns: tuple[str, ...]


@dataclass
class Schema:
    """The database's tables and the foreign keys between them, read once."""
    tables: dict[str, sa.Table]
    references: dict[str, list[Reference]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def read(cls, engine: sa.Engine) -> Schema:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        schema = cls(dict(metadata.tables))
        for table in metadata.tables.values():
            for key in table.foreign_key_constraints:
                if key.referred_table is table:
                    continue  # none in MLflow's schema; following one would need a walk of its own
                schema.references[key.referred_table.name].append(Reference(
                    table, tuple(c.name for c in key.columns), tuple(e.column.name for e in key.elements)))
        return schema


def _batched(items, size: int):
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _matching(table: sa.Table, columns: tuple[str, ...], keys: list[tuple]):
    if len(columns) == 1:
        return table.c[columns[0]].in_([key[0] for key in keys])
    return sa.tuple_(*(table.c[c] for c in columns)).in_(keys)


class Purger:
    def __init__(self, engine: sa.Engine, schema: Schema | None = None, step: int = STEP):
        self.engine = engine
        self.schema = schema or Schema.read(engine)
        self.step = step
        self.deleted: dict[str, int] = defaultdict(int)  # rows per table, children included

    def delete(self, table_name: str, columns: tuple[str, ...], keys: list[tuple]) -> None:
        """Deletes the rows of `table_name` whose `columns` hold one of `keys`, after every row referring to them."""
        table = self.schema.tables[table_name]
        for reference in self.schema.references[table_name]:
            if reference.parent_columns == columns:
                values = keys
            else:  # the child refers to other columns than the ones named: read them from the parent's rows
                values = self._select(table, reference.parent_columns, columns, keys, limit=None)
            for chunk in _batched(values, self.step):
                self._delete_referring(reference.child, reference.columns, chunk)
        self._delete_rows(table, columns, keys)

    def _delete_referring(self, table: sa.Table, columns: tuple[str, ...], values: list[tuple]) -> None:
        if not self.schema.references[table.name]:
            self._delete_rows(table, columns, values)
            return
        # Rows others refer to in turn: one step of them at a time, by primary key, their children first.
        key = tuple(c.name for c in table.primary_key.columns)
        while rows := self._select(table, key, columns, values, limit=self.step):
            self.delete(table.name, key, rows)

    def _select(self, table: sa.Table, wanted: tuple[str, ...], columns: tuple[str, ...], keys: list[tuple],
                limit: int | None) -> list[tuple]:
        query = sa.select(*(table.c[c] for c in wanted)).where(_matching(table, columns, keys))
        if limit is None:
            query = query.distinct()
        else:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]

    def _delete_rows(self, table: sa.Table, columns: tuple[str, ...], keys: list[tuple]) -> None:
        for chunk in _batched(keys, self.step):
            statement = sa.delete(table).where(_matching(table, columns, chunk))
            statement = statement.with_dialect_options(mysql_limit=self.step)  # other dialects: all at once
            while True:
                with self.engine.begin() as connection:
                    count = connection.execute(statement).rowcount
                self.deleted[table.name] += count
                if count < self.step or self.engine.dialect.name != "mysql":
                    break
