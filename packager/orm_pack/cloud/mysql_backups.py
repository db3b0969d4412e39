"""On-demand backups of the stack's MySQL HeatWave DB system, and restoring one.

HeatWave restores a backup only into a new DB system (the console's "Restore to new DB System", the API's
CreateDbSystem with a BACKUP source); there is no restore in place. So a rollback makes a new DB system from
the backup with the old one's settings and private address (after the old one is gone: an address is held by
one DB system at a time), and the stack's Terraform state is pointed at it (orm_pack.deploy.upgrade).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from orm_pack.errors import ExitCode, UserError


@dataclass(frozen=True)
class Backup:
    id: str
    display_name: str
    state: str
    db_system_id: str


class MySqlBackups:
    def __init__(self, backups_client, db_systems_client, poll_seconds: float = 10.0,
                 max_wait_seconds: float = 4 * 3600):
        self.backups = backups_client
        self.db_systems = db_systems_client
        self.poll_seconds = poll_seconds
        self.max_wait_seconds = max_wait_seconds

    def _wait(self, fetch, done, what: str):
        deadline = time.monotonic() + self.max_wait_seconds
        while True:
            data = fetch()
            if done(data.lifecycle_state):
                return data
            if data.lifecycle_state in ("FAILED", "DELETED") or time.monotonic() > deadline:
                raise UserError(f"{what} is {data.lifecycle_state}"
                                + (f" ({data.lifecycle_details})" if getattr(data, "lifecycle_details", None) else "")
                                + (" after the wait" if time.monotonic() > deadline else ""), ExitCode.FAILURE)
            time.sleep(self.poll_seconds)

    def db_system(self, db_system_id: str):
        return self.db_systems.get_db_system(db_system_id).data

    def back_up(self, db_system_id: str, display_name: str, retention_days: int = 14) -> Backup:
        """A full on-demand backup, waited for until ACTIVE."""
        from oci.mysql import models

        data = self.backups.create_backup(models.CreateBackupDetails(
            db_system_id=db_system_id, display_name=display_name, backup_type="FULL",
            retention_in_days=retention_days,
            description="taken by orm-pack upgrade")).data
        done = self._wait(lambda: self.backups.get_backup(data.id).data, lambda state: state == "ACTIVE",
                          f"backup {data.id} of DB system {db_system_id}")
        return Backup(done.id, done.display_name, done.lifecycle_state, db_system_id)

    def delete(self, db_system_id: str) -> None:
        """Deletes a DB system (its deletion protection turned off first), waiting until it is gone."""
        from oci.mysql import models

        system = self.db_system(db_system_id)
        policy = system.deletion_policy
        if policy is not None and policy.is_delete_protected:
            self.db_systems.update_db_system(db_system_id, models.UpdateDbSystemDetails(
                deletion_policy=models.UpdateDeletionPolicyDetails(is_delete_protected=False)))
            self._wait(lambda: self.db_system(db_system_id), lambda state: state == "ACTIVE",
                       f"DB system {db_system_id}")
        self.db_systems.delete_db_system(db_system_id)
        self._wait(lambda: self.db_system(db_system_id), lambda state: state == "DELETED",
                   f"the deletion of DB system {db_system_id}")

    def restore(self, backup_id: str, like) -> str:
        """A new DB system from the backup with the settings of `like` (the DB system it replaces, as
        GetDbSystem returned it), at its private address; waits until ACTIVE and returns its OCID."""
        from oci.mysql import models

        secure = None
        if like.secure_connections is not None:
            secure = models.SecureConnectionDetails(
                certificate_generation_type=like.secure_connections.certificate_generation_type,
                certificate_id=like.secure_connections.certificate_id)
        deletion = None
        if like.deletion_policy is not None:
            deletion = models.CreateDeletionPolicyDetails(
                is_delete_protected=like.deletion_policy.is_delete_protected,
                automatic_backup_retention=like.deletion_policy.automatic_backup_retention,
                final_backup=like.deletion_policy.final_backup)
        backup_policy = None
        if like.backup_policy is not None:
            backup_policy = models.CreateBackupPolicyDetails(
                is_enabled=like.backup_policy.is_enabled,
                retention_in_days=like.backup_policy.retention_in_days,
                window_start_time=like.backup_policy.window_start_time)
        data = self.db_systems.create_db_system(models.CreateDbSystemDetails(
            compartment_id=like.compartment_id, display_name=like.display_name,
            availability_domain=like.availability_domain, shape_name=like.shape_name,
            subnet_id=like.subnet_id, nsg_ids=like.nsg_ids, ip_address=like.ip_address,
            configuration_id=like.configuration_id, data_storage_size_in_gbs=like.data_storage_size_in_gbs,
            is_highly_available=like.is_highly_available, freeform_tags=like.freeform_tags,
            secure_connections=secure, deletion_policy=deletion, backup_policy=backup_policy,
            source=models.CreateDbSystemSourceFromBackupDetails(source_type="BACKUP", backup_id=backup_id))).data
        self._wait(lambda: self.db_system(data.id), lambda state: state == "ACTIVE",
                   f"DB system {data.id} restored from backup {backup_id}")
        return data.id
