"""mlflow_oci.purge on SQLite with foreign keys enforced: the database refuses a parent deleted before a row that
refers to it, as MySQL does, so only a purge in the right order passes."""
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docker" / "lib"))
from mlflow_oci.purge import Purger  # noqa: E402


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'purge.db'}")
    sa.event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA foreign_keys = ON"))
    metadata = sa.MetaData()
    # runs <- metrics; runs <- spans (composite key) <- span_events: three levels, none with ON DELETE CASCADE
    sa.Table("runs", metadata, sa.Column("run_uuid", sa.String(32), primary_key=True))
    sa.Table("metrics", metadata, sa.Column("run_uuid", sa.ForeignKey("runs.run_uuid"), primary_key=True),
             sa.Column("step", sa.Integer, primary_key=True))
    sa.Table("spans", metadata, sa.Column("run_uuid", sa.ForeignKey("runs.run_uuid"), primary_key=True),
             sa.Column("span_id", sa.String(16), primary_key=True))
    sa.Table("span_events", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("run_uuid", sa.String(32)), sa.Column("span_id", sa.String(16)),
             sa.ForeignKeyConstraint(["run_uuid", "span_id"], ["spans.run_uuid", "spans.span_id"]))
    metadata.create_all(engine)
    with engine.begin() as connection:
        for run in ("doomed", "kept"):
            connection.execute(sa.text("INSERT INTO runs VALUES (:r)"), {"r": run})
            connection.execute(sa.text("INSERT INTO metrics VALUES (:r, :s)"), [{"r": run, "s": s} for s in range(30)])
            connection.execute(sa.text("INSERT INTO spans VALUES (:r, :s)"), [{"r": run, "s": f"s{s}"} for s in range(7)])
            connection.execute(sa.text("INSERT INTO span_events (run_uuid, span_id) VALUES (:r, :s)"),
                               [{"r": run, "s": f"s{s % 7}"} for s in range(21)])
    yield engine
    engine.dispose()


def _count(engine, table: str, run: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text(f"SELECT count(*) FROM {table} WHERE run_uuid = :r"), {"r": run})


def test_the_database_refuses_a_parent_before_its_children(engine):
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM runs WHERE run_uuid = 'doomed'"))


def test_a_purge_follows_the_foreign_keys_down_and_leaves_other_rows(engine):
    purger = Purger(engine, step=4)  # a step smaller than the children: each level in several statements
    purger.delete("runs", ("run_uuid",), [("doomed",)])
    assert [_count(engine, t, "doomed") for t in ("runs", "metrics", "spans", "span_events")] == [0, 0, 0, 0]
    assert [_count(engine, t, "kept") for t in ("runs", "metrics", "spans", "span_events")] == [1, 30, 7, 21]
    assert purger.deleted == {"runs": 1, "metrics": 30, "spans": 7, "span_events": 21}


def test_a_purge_cut_short_is_finished_by_the_next(engine, monkeypatch):
    purger = Purger(engine, step=4)
    calls = 0
    original = Purger._delete_rows

    def dies_on_the_third_statement(self, *args):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Purger, "_delete_rows", dies_on_the_third_statement)
    with pytest.raises(KeyboardInterrupt):
        purger.delete("runs", ("run_uuid",), [("doomed",)])
    assert _count(engine, "runs", "doomed") == 1  # the parent goes last: the next purge finds it
    monkeypatch.undo()
    Purger(engine, step=4).delete("runs", ("run_uuid",), [("doomed",)])
    assert [_count(engine, t, "doomed") for t in ("runs", "metrics", "spans", "span_events")] == [0, 0, 0, 0]
