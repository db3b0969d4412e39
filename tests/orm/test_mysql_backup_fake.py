"""The MySQL HeatWave fake (ormfake/mysql.py) through the real SDK: before `orm-pack upgrade` migrates the
database it takes a backup on demand and waits for it; when the migration fails it restores the backup into a
new DB system. The story first with a stand-in backend (a file), then with MariaDB for real."""
import oci
import pytest

from harness import ocids
from ormfake import ApiKey, write_oci_config
from ormfake.testing import COMPARTMENT, REGION

SUBNET = ocids.mint("subnet", "mysql-backup-fake", REGION)
QUICK = 0.001  # the fake's delays at a thousandth of the service's


class FileBackend:
    """A DB system's data as one string: what a backup snapshots, what a restore starts from."""

    def __init__(self, content: str):
        self.content = content

    def snapshot(self, path):
        path.write_text(self.content)

    def restore(self, path):
        return FileBackend(path.read_text())


class BrokenBackend(FileBackend):
    def snapshot(self, path):
        raise OSError("disk full")


def _clients(config_file, fake):
    config = oci.config.from_file(str(config_file))
    options = {"service_endpoint": fake.url, "retry_strategy": oci.retry.NoneRetryStrategy()}
    return oci.mysql.DbBackupsClient(config, **options), oci.mysql.DbSystemClient(config, **options)


@pytest.fixture
def mysql(fake, oci_config):
    fake.mysql.time_scale = QUICK
    return _clients(oci_config, fake)


def _wait(client, get, resource_id, state, seconds=30):
    return oci.wait_until(client, get(resource_id), "lifecycle_state", state, max_wait_seconds=seconds,
                          max_interval_seconds=0.05).data


def _backup(backups, db_system_id, backup_type="FULL"):
    return backups.create_backup(oci.mysql.models.CreateBackupDetails(
        db_system_id=db_system_id, backup_type=backup_type, display_name="before-upgrade")).data


def _restore(systems, backup_id, ip_address=None):
    return systems.create_db_system(oci.mysql.models.CreateDbSystemDetails(
        compartment_id=COMPARTMENT, shape_name="MySQL.2", subnet_id=SUBNET, display_name="mlflow-restored",
        ip_address=ip_address, source=oci.mysql.models.CreateDbSystemSourceFromBackupDetails(backup_id=backup_id))).data


def _service_error(call, *args, **kwargs) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_a_backup_taken_on_demand_is_creating_then_active_and_listed_as_manual(fake, mysql):
    backups, _ = mysql
    system_id = fake.add_db_system(COMPARTMENT, "mlflow-mysql", "10.0.1.10", FileBackend("v1"))
    backup = _backup(backups, system_id)
    assert (backup.lifecycle_state, backup.creation_type, backup.backup_type) == ("CREATING", "MANUAL", "FULL")
    assert ocids.shape_problem(backup.id) is None and backup.id.startswith("ocid1.mysqlbackup.oc1.phx.")
    assert backup.db_system_id == system_id and backup.db_system_snapshot.ip_address == "10.0.1.10"
    backup = _wait(backups, backups.get_backup, backup.id, "ACTIVE")
    assert backup.retention_in_days == 365
    listed = backups.list_backups(COMPARTMENT, db_system_id=system_id).data
    assert [(b.id, b.creation_type, b.lifecycle_state) for b in listed] == [(backup.id, "MANUAL", "ACTIVE")]
    assert backups.list_backups(COMPARTMENT, creation_type="AUTOMATIC").data == []


def test_backups_are_listed_newest_first_in_pages(fake, mysql):
    backups, _ = mysql
    system_id = fake.add_db_system(COMPARTMENT, "mlflow-mysql", "10.0.1.10", FileBackend("v1"))
    taken = [_backup(backups, system_id, backup_type).id for backup_type in ("FULL", "INCREMENTAL") * 4]
    first = backups.list_backups(COMPARTMENT, db_system_id=system_id)
    assert len(first.data) == 5 and first.has_next_page  # the fake's pages hold 5 (tests/orm/conftest.py)
    listed = oci.pagination.list_call_get_all_results(backups.list_backups, COMPARTMENT, db_system_id=system_id).data
    assert [b.id for b in listed] == list(reversed(taken))
    assert {b.backup_type for b in listed} == {"FULL", "INCREMENTAL"}


def test_a_backup_restores_into_a_new_db_system_and_the_original_keeps_its_later_data(fake, mysql):
    backups, systems = mysql
    original = FileBackend("v1")
    system_id = fake.add_db_system(COMPARTMENT, "mlflow-mysql", "10.0.1.10", original)
    backup = _wait(backups, backups.get_backup, _backup(backups, system_id).id, "ACTIVE")
    original.content = "v2 (half-migrated)"
    restored = _restore(systems, backup.id, ip_address="10.0.1.20")
    assert restored.lifecycle_state == "CREATING" and restored.id != system_id
    assert restored.id.startswith("ocid1.mysqldbsystem.oc1.phx.") and ocids.shape_problem(restored.id) is None
    assert (restored.source.source_type, restored.source.backup_id) == ("BACKUP", backup.id)
    restored = _wait(systems, systems.get_db_system, restored.id, "ACTIVE")
    assert restored.ip_address == "10.0.1.20" and restored.endpoints[0].ip_address == "10.0.1.20"
    assert fake.db_system_backend(restored.id).content == "v1"
    assert fake.db_system_backend(system_id).content == "v2 (half-migrated)"
    assert systems.get_db_system(system_id).data.lifecycle_state == "ACTIVE"


def test_a_restore_may_not_take_an_address_another_db_system_holds(fake, mysql):
    backups, systems = mysql
    system_id = fake.add_db_system(COMPARTMENT, "mlflow-mysql", "10.0.1.10", FileBackend("v1"))
    backup = _wait(backups, backups.get_backup, _backup(backups, system_id).id, "ACTIVE")
    error = _service_error(_restore, systems, backup.id, ip_address="10.0.1.10")
    assert (error.status, error.code) == (409, "Conflict") and system_id in error.message
    assigned = _restore(systems, backup.id)  # no address asked for: the service picks a free one
    assert assigned.ip_address != "10.0.1.10" and assigned.ip_address.startswith("10.0.1.")


def test_the_original_address_is_free_again_once_its_db_system_is_deleted(fake, mysql):
    backups, systems = mysql
    system_id = fake.add_db_system(COMPARTMENT, "mlflow-mysql", "10.0.1.10", FileBackend("v1"))
    backup = _wait(backups, backups.get_backup, _backup(backups, system_id).id, "ACTIVE")
    fake.mysql.time_scale = 0.05  # a deletion that lasts 3 s: long enough to try the address meanwhile, under load
    systems.delete_db_system(system_id)
    assert systems.get_db_system(system_id).data.lifecycle_state == "DELETING"
    assert _service_error(_restore, systems, backup.id, ip_address="10.0.1.10").status == 409
    fake.mysql.time_scale = QUICK
    _wait(systems, systems.get_db_system, system_id, "DELETED")
    restored = _wait(systems, systems.get_db_system, _restore(systems, backup.id, "10.0.1.10").id, "ACTIVE")
    assert restored.ip_address == "10.0.1.10" and fake.db_system_backend(restored.id).content == "v1"
    assert backups.get_backup(backup.id).data.lifecycle_state == "ACTIVE"  # a backup outlives its DB system


def test_a_backup_needs_a_db_system_that_is_active(fake, mysql):
    backups, systems = mysql
    system_id = fake.add_db_system(COMPARTMENT, "mlflow-mysql", "10.0.1.10", FileBackend("v1"))
    backup = _wait(backups, backups.get_backup, _backup(backups, system_id).id, "ACTIVE")
    creating = _restore(systems, backup.id)
    error = _service_error(_backup, backups, creating.id)
    assert (error.status, error.code) == (409, "IncorrectState") and "CREATING" in error.message
    systems.delete_db_system(system_id)
    assert _service_error(_backup, backups, system_id).status == 409


def test_an_always_free_db_system_has_no_manual_backups(fake, mysql):
    backups, _ = mysql
    system_id = fake.add_db_system(COMPARTMENT, "mlflow-free", "10.0.1.10", FileBackend("v1"), shape_name="MySQL.Free")
    error = _service_error(_backup, backups, system_id)
    assert error.status == 400 and "Always Free" in error.message


def test_a_backup_whose_data_cannot_be_read_fails(fake, mysql):
    backups, _ = mysql
    system_id = fake.add_db_system(COMPARTMENT, "mlflow-mysql", "10.0.1.10", BrokenBackend("v1"))
    backup = _wait(backups, backups.get_backup, _backup(backups, system_id).id, "FAILED")
    assert "disk full" in backup.lifecycle_details


def test_unknown_backups_and_db_systems_are_not_found(fake, mysql):
    backups, systems = mysql
    unknown_backup = ocids.mint("mysqlbackup", "nobody", REGION)
    for call, args in [(backups.get_backup, (unknown_backup,)), (_restore, (systems, unknown_backup)),
                       (systems.get_db_system, (ocids.mint("mysqldbsystem", "nobody", REGION),)),
                       (_backup, (backups, ocids.mint("mysqldbsystem", "nobody", REGION)))]:
        error = _service_error(call, *args)
        assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound"), call
    other = ocids.mint("compartment", "not-ours")
    assert _service_error(backups.list_backups, other).status == 404


def test_a_delete_protected_db_system_is_not_deleted(fake, mysql):
    _, systems = mysql
    protected = fake.add_db_system(COMPARTMENT, "mlflow-mysql", "10.0.1.10", FileBackend("v1"), delete_protected=True)
    error = _service_error(systems.delete_db_system, protected)
    assert (error.status, error.code) == (409, "IncorrectState") and "isDeleteProtected" in error.message
    assert systems.get_db_system(protected).data.lifecycle_state == "ACTIVE"
    unprotected = fake.add_db_system(COMPARTMENT, "mlflow-old", "10.0.1.11", FileBackend("v0"))
    systems.delete_db_system(unprotected)
    assert _wait(systems, systems.get_db_system, unprotected, "DELETED").deletion_policy.is_delete_protected is False


def test_every_call_must_be_signed_with_a_known_key(fake, mysql, tmp_path):
    system_id = fake.add_db_system(COMPARTMENT, "mlflow-mysql", "10.0.1.10", FileBackend("v1"))
    stranger = write_oci_config(tmp_path / "stranger", ApiKey.generate(), region=REGION)
    backups, _ = _clients(stranger, fake)
    error = _service_error(_backup, backups, system_id)
    assert (error.status, error.code) == (401, "NotAuthenticated")
    assert fake.auth_failures and not fake.mysql.backups


@pytest.mark.dataplane
def test_mariadb_backup_restores_the_rows_as_they_were(fake, mysql, tmp_path):
    """MariaDB for real: a table's row changed after the backup is as it was in the restored DB system, and
    as changed in the original; the restored system has the original's accounts too."""
    from dataplane.servers import ProcessTracker
    from harness.mariadb_backend import MariaDBBackend

    backups, systems = mysql
    tracker = ProcessTracker()
    try:
        original = MariaDBBackend.start(tracker, tmp_path / "mariadb")
        with original.connect() as connection, connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE mlflow")
            cursor.execute("CREATE TABLE mlflow.experiments (experiment_id INT PRIMARY KEY, name VARCHAR(64))")
            cursor.execute("INSERT INTO mlflow.experiments VALUES (0, 'Default'), (1, 'wine')")
            cursor.execute("CREATE USER 'mlflow'@'%' IDENTIFIED BY 'Mlflow-pw-1'")
            cursor.execute("GRANT ALL PRIVILEGES ON mlflow.* TO 'mlflow'@'%'")
        system_id = fake.add_db_system(COMPARTMENT, "mlflow-mysql", "10.0.1.10", original)
        backup = _wait(backups, backups.get_backup, _backup(backups, system_id).id, "ACTIVE")
        with original.connect("mlflow") as connection, connection.cursor() as cursor:
            cursor.execute("UPDATE experiments SET name = 'wine-migrated' WHERE experiment_id = 1")
        restored = _wait(systems, systems.get_db_system, _restore(systems, backup.id, "10.0.1.20").id, "ACTIVE", 120)
        restored_backend = fake.db_system_backend(restored.id)
        assert restored_backend.port != original.port
        with restored_backend.connect("mlflow") as connection, connection.cursor() as cursor:
            cursor.execute("SELECT experiment_id, name FROM experiments ORDER BY experiment_id")
            assert cursor.fetchall() == ((0, "Default"), (1, "wine"))
        with original.connect("mlflow") as connection, connection.cursor() as cursor:
            cursor.execute("SELECT name FROM experiments WHERE experiment_id = 1")
            assert cursor.fetchall() == (("wine-migrated",),)
        import pymysql

        pymysql.connect(host=restored_backend.host, port=restored_backend.port, user="mlflow", password="Mlflow-pw-1",
                        database="mlflow", ssl={"check_hostname": False}).close()
    finally:
        tracker.stop_all()
        assert not tracker.leftovers()
