"""Single sign-on takes over nobody by name (docker/lib/mlflow_oci/people.py), against MLflow's own users'
store on SQLite: a person is the provider's `sub`, mapped once to a readable name that must be free.

Before people were keyed by subject, an identity whose preferred_username matched a password user, a service
login or another person became that user (tests/dataplane/test_sso.py drives the same through the server)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docker" / "lib"))
from mlflow_oci import people  # noqa: E402

PASSWORD = "Bob-Passw0rd-2026"


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def empty_users_db(tmp_path_factory) -> Path:
    """MLflow's users' database with its first admin, migrated once (its migrations take seconds)."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    path = tmp_path_factory.mktemp("users") / "users.db"
    users = SqlAlchemyStore()
    users.init_db(f"sqlite:///{path}")
    users.create_user("mlflow", "Admin-Passw0rd-2026", is_admin=True)
    users.engine.dispose()
    return path


@pytest.fixture
def store(tmp_path, empty_users_db):
    import shutil

    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    shutil.copy(empty_users_db, tmp_path / "users.db")
    users = SqlAlchemyStore()
    users.init_db(f"sqlite:///{tmp_path / 'users.db'}")   # at its head revision already: nothing to migrate
    yield users
    users.engine.dispose()


@pytest.mark.parametrize("claimed", ["bob", "Bob", "BOB"])
def test_a_password_user_is_never_taken_over_by_a_sign_in_under_its_name(store, claimed):
    store.create_user("bob", PASSWORD, is_admin=False)
    with pytest.raises(people.NameTaken) as taken:
        people.People(store).username_for("u-attacker", people.folded(claimed), is_admin=True)
    assert taken.value.existing == "bob"
    assert store.get_user("bob").is_admin is False and store.authenticate_user("bob", PASSWORD)


def test_a_name_that_differs_only_in_case_from_a_user_is_taken(store):
    store.create_user("Carol", PASSWORD, is_admin=False)
    with pytest.raises(people.NameTaken, match="Carol"):
        people.People(store).username_for("u-carol", "carol", is_admin=False)


def test_a_person_keeps_their_user_when_the_provider_renames_them_and_a_newcomer_with_the_old_name_is_refused(store):
    directory = people.People(store)
    assert directory.username_for("u-alice", "alice", is_admin=False) == "alice"
    assert directory.username_for("u-alice", "alice.smith", is_admin=True) == "alice"   # renamed, still alice
    assert store.get_user("alice").is_admin is True
    with pytest.raises(people.NameTaken):
        directory.username_for("u-someone-else", "alice", is_admin=False)


def test_a_deleted_persons_name_is_free_again_once_its_mapping_is_stale(store):
    clock = Clock()
    directory = people.People(store, clock=clock)
    directory.username_for("u-dave", "dave", is_admin=False)
    store.delete_user("dave")                       # the admin removed the person who left
    with pytest.raises(people.NameTaken):           # a first sign-in of dave may still be in flight elsewhere
        directory.username_for("u-new-dave", "dave", is_admin=False)
    clock.now += people.STALE_AFTER_SECONDS + 1
    assert directory.username_for("u-new-dave", "dave", is_admin=False) == "dave"
    with pytest.raises(people.NameTaken):           # the one who left gets nothing back
        directory.username_for("u-dave", "dave", is_admin=False)


def test_single_sign_on_users_of_the_earlier_version_are_adopted_once_by_their_current_name(store):
    for name in ("Erin.Smith", "frank", "mlflow-serving"):   # by name, by the earlier sign-in code; a service login
        store.create_user(name, "random-unknown-password-0123456789", is_admin=False)
    reserved = ["mlflow", "mlflow-serving", "mlflow-notebook"]
    assert people.prepare(store.engine, "oidc", reserved) == 2       # every user but the reserved ones
    assert people.prepare(store.engine, "oidc", reserved) is None    # once
    directory = people.People(store)
    assert directory.username_for("u-erin", "erin.smith", is_admin=True) == "Erin.Smith"
    assert store.get_user("Erin.Smith").is_admin is True
    with pytest.raises(people.NameTaken):            # adopted once: not by a second subject
        directory.username_for("u-other-erin", "erin.smith", is_admin=False)
    for reserved_name in ("mlflow", "mlflow-serving"):  # the first admin's and the endpoint's rows never are
        with pytest.raises(people.NameTaken):
            directory.username_for("u-root", reserved_name, is_admin=True)


def test_a_deployment_that_had_passwords_only_adopts_nobody_when_it_turns_single_sign_on_on(store):
    store.create_user("bob", PASSWORD, is_admin=False)
    assert people.prepare(store.engine, "mlflow", ["mlflow"]) == 0     # this version, per-person passwords
    assert people.prepare(store.engine, "oidc", ["mlflow"]) is None    # later: single sign-on
    with pytest.raises(people.NameTaken):
        people.People(store).username_for("u-bob", "bob", is_admin=False)
