"""MySQL HeatWave's DB system and backup calls (`/20190415`, the SDK's DbSystemClient and DbBackupsClient)
beside the Resource Manager fake, on the same loopback server and signature check: what `orm-pack upgrade`
does before and after a migration it cannot undo (a backup taken on demand, waited for; on failure the
backup restored into a new DB system).

The subset: GetDbSystem, CreateDbSystem from a backup, DeleteDbSystem, CreateBackup, GetBackup, ListBackups,
with the API's JSON field names (oci.mysql.models.DbSystem, Backup, BackupSummary, CreateBackupDetails,
CreateDbSystemDetails, CreateDbSystemSourceFromBackupDetails, DeletionPolicyDetails).

Rules of the real service it keeps, with where they are written:
- "You can restore these backups to a new DB system" (HeatWave documentation, Overview of Backups): a
  restore is CreateDbSystem with `source` {"sourceType": "BACKUP", "backupId"}; the new DB system gets a new
  OCID and is CREATING until the data is in, then ACTIVE. A manual backup outlives the DB system it was
  taken of; the fake keeps it for its retentionInDays (365 when the request gives none: the service's default
  and bounds are not in the API reference, so the fake's 1..3650 is a stand-in).
- A manual backup needs a DB system that is ACTIVE or INACTIVE, and "You cannot create a manual backup on an
  Always Free DB system" (HeatWave documentation, Creating a Manual Backup). Any other state answers 409
  IncorrectState, as OCI answers an operation a resource's state does not allow.
- A backup's creationType is MANUAL, AUTOMATIC or OPERATOR (oci.mysql.models.Backup): one made through the
  API is MANUAL.
- `ipAddress` "Must be an available IP address within the subnet's CIDR. If you don't specify a value,
  Oracle automatically assigns a private IP address" (CreateDbSystemDetails): an address another DB system
  holds is refused. The API's exact answer is not documented; the fake answers 409 Conflict and names the
  address and its holder.
- `deletionPolicy.isDeleteProtected` "Specifies whether the DB System can be deleted" (DeletionPolicyDetails):
  a protected DB system is not deleted. The exact error is not documented; the fake answers 409
  IncorrectState and says to turn the protection off first.
- Anything unknown, or in a compartment the caller does not know, answers 404 NotAuthorizedOrNotFound.

Data for real: a test gives each DB system it registers a `backend` (harness/mariadb_backend.py is one over
MariaDB). When a backup is done the fake calls `backend.snapshot(path)` (before the backup turns ACTIVE); when
a DB system is created from that backup it calls `backend.restore(path)` and keeps the new server's backend,
which `db_system_backend(id)` hands the test.

Delays: a backup takes minutes, a DB system from a backup longer; the fake waits a stand-in for each,
multiplied by `time_scale` (OCI_DOUBLE_TIME_SCALE, as the provider double's delays are; tests make it smaller).
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from harness import ocids
from harness.double.propagation import SCALE_ENV

API = "/20190415"
REGION = "us-phoenix-1"
FREE_SHAPE = "MySQL.Free"
# Stand-ins for the service's pace (seconds, before time_scale): minutes for a backup, longer for a new DB
# system, a minute to delete one.
SECONDS = {"backup": 120.0, "restore": 600.0, "delete": 60.0}
LIVE_STATES = ("CREATING", "ACTIVE", "INACTIVE", "UPDATING", "DELETING", "FAILED")
BACKUP_RETENTION_DAYS = 365  # a stand-in: see the module's docstring


class Backend(Protocol):
    """A DB system's data, as a test provides it."""

    def snapshot(self, path: Path) -> None: ...

    def restore(self, path: Path) -> "Backend": ...


class MysqlError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def is_mysql(path: str) -> bool:
    return path.startswith(API + "/")


def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _not_found(what: str) -> MysqlError:
    return MysqlError(404, "NotAuthorizedOrNotFound", f"Authorization failed or requested resource not found: {what}")


class MySQL:
    """The DB systems and backups of one fake; `compartments`: the compartments the caller may use (the
    Resource Manager fake's set, shared)."""

    def __init__(self, root: Path, compartments: set, time_scale: float | None = None, page_size: int = 100):
        self.root = Path(root)
        self.compartments = compartments
        self.page_size = page_size  # the most items a list call answers, whatever `limit` asks
        self.time_scale = float(os.environ.get(SCALE_ENV, "0.05")) if time_scale is None else time_scale
        self.lock = threading.RLock()
        self.db_systems: dict[str, dict] = {}
        self.backups: dict[str, dict] = {}
        self.backends: dict[str, Backend] = {}
        self.backup_files: dict[str, Path] = {}
        self.threads: list[threading.Thread] = []

    # ------------------------------------------------------------- registration (tests)
    def add_db_system(self, compartment_id: str, display_name: str, ip_address: str, backend: Backend,
                      db_system_id: str | None = None, shape_name: str = "MySQL.2",
                      delete_protected: bool = False, subnet_id: str | None = None) -> str:
        """An ACTIVE DB system, as the stack's apply leaves it; returns its OCID."""
        db_system_id = db_system_id or ocids.mint("mysqldbsystem", secrets.token_hex(8), REGION)
        with self.lock:
            self._check_address_free(ip_address)
            self.db_systems[db_system_id] = self._db_system_record(
                db_system_id, compartment_id, display_name, ip_address, shape_name,
                subnet_id or ocids.mint("subnet", display_name, REGION),
                {"automaticBackupRetention": "RETAIN", "finalBackup": "SKIP_FINAL_BACKUP",
                 "isDeleteProtected": delete_protected},
                {"sourceType": "NONE"}, "ACTIVE")
            self.backends[db_system_id] = backend
        return db_system_id

    def db_system_backend(self, db_system_id: str) -> Backend:
        with self.lock:
            return self.backends[db_system_id]

    def wait(self, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        for thread in list(self.threads):
            thread.join(timeout=max(0.0, deadline - time.time()))

    # ------------------------------------------------------------- records
    @staticmethod
    def _db_system_record(db_system_id, compartment_id, display_name, ip_address, shape_name, subnet_id,
                          deletion_policy, source, state) -> dict:
        now = _now()
        return {
            "id": db_system_id, "displayName": display_name, "description": None, "compartmentId": compartment_id,
            "subnetId": subnet_id, "nsgIds": [], "isHighlyAvailable": False,
            "availabilityDomain": "Uocm:PHX-AD-1", "faultDomain": "FAULT-DOMAIN-1", "shapeName": shape_name,
            "mysqlVersion": "8.4.4", "configurationId": ocids.mint("mysqlconfiguration", shape_name),
            "dataStorageSizeInGBs": 50, "hostnameLabel": None, "ipAddress": ip_address, "port": 3306,
            "portX": 33060, "isHeatWaveClusterAttached": False, "lifecycleState": state, "lifecycleDetails": None,
            "deletionPolicy": deletion_policy, "source": source,
            "backupPolicy": {"isEnabled": True, "retentionInDays": 7, "windowStartTime": "03:00"},
            "maintenance": {"windowStartTime": "sun 05:00"}, "endpoints": [
                {"hostname": None, "ipAddress": ip_address, "port": 3306, "portX": 33060, "modes": ["READ", "WRITE"],
                 "status": "ACTIVE", "statusDetails": None, "resourceType": "DBSYSTEM", "resourceId": db_system_id}],
            "dataStorage": {"dataStorageSizeInGBs": 50, "isAutoExpandStorageEnabled": False},
            "databaseMode": "READ_WRITE", "accessMode": "UNRESTRICTED", "crashRecovery": "ENABLED",
            "timeCreated": now, "timeUpdated": now, "freeformTags": {}, "definedTags": {}, "systemTags": {},
        }

    def _set(self, table: dict, resource_id: str, **fields) -> None:
        with self.lock:
            table[resource_id].update(fields, timeUpdated=_now())

    def _compartment(self, compartment_id: str | None) -> str:
        if not compartment_id:
            raise MysqlError(400, "MissingParameter", "compartmentId is required")
        if compartment_id not in self.compartments:
            raise _not_found(compartment_id)
        return compartment_id

    def _db_system(self, db_system_id: str) -> dict:
        system = self.db_systems.get(db_system_id)
        if system is None or system["compartmentId"] not in self.compartments:
            raise _not_found(f"DB System {db_system_id}")
        return system

    def _backup(self, backup_id: str) -> dict:
        backup = self.backups.get(backup_id)
        if backup is None or backup["compartmentId"] not in self.compartments:
            raise _not_found(f"Backup {backup_id}")
        return backup

    def _holder(self, ip_address: str) -> str | None:
        return next((s["id"] for s in self.db_systems.values()
                     if s["ipAddress"] == ip_address and s["lifecycleState"] in LIVE_STATES), None)

    def _check_address_free(self, ip_address: str) -> None:
        try:
            ipaddress.IPv4Address(ip_address)
        except ValueError:
            raise MysqlError(400, "InvalidParameter", f"ipAddress {ip_address!r} is not a dotted-quad IPv4 address") from None
        holder = self._holder(ip_address)
        if holder:
            raise MysqlError(409, "Conflict", f"The IP address {ip_address} is already in use by DB System {holder}")

    def _free_address_near(self, ip_address: str) -> str:
        """An address Oracle would assign from the subnet: here the first free one in the /24 of `ip_address`."""
        network = ipaddress.IPv4Network(f"{ip_address}/24", strict=False)
        for host in list(network.hosts())[1:]:
            if not self._holder(str(host)):
                return str(host)
        raise MysqlError(400, "InvalidParameter", f"No free IP address left in {network}")

    def _later(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self.lock:
            self.threads.append(thread)
        thread.start()

    def _pause(self, kind: str) -> None:
        time.sleep(SECONDS[kind] * self.time_scale)

    # ------------------------------------------------------------- backups
    def create_backup(self, body: dict) -> dict:
        with self.lock:
            system = self._db_system(body.get("dbSystemId") or "")
            if system["lifecycleState"] not in ("ACTIVE", "INACTIVE"):
                raise MysqlError(409, "IncorrectState", f"DB System {system['id']} is {system['lifecycleState']}: a "
                                                        "manual backup needs it ACTIVE or INACTIVE")
            if system["shapeName"] == FREE_SHAPE:
                raise MysqlError(400, "InvalidParameter", "A manual backup cannot be created on an Always Free DB System")
            backup_type = body.get("backupType") or "INCREMENTAL"
            if backup_type not in ("FULL", "INCREMENTAL"):
                raise MysqlError(400, "InvalidParameter", f"backupType {backup_type} is not FULL or INCREMENTAL")
            retention = body.get("retentionInDays") or BACKUP_RETENTION_DAYS
            if not isinstance(retention, int) or not 1 <= retention <= 3650:
                raise MysqlError(400, "InvalidParameter", "retentionInDays must be between 1 and 3650")
            backup_id = ocids.mint("mysqlbackup", secrets.token_hex(8), REGION)
            now = _now()
            snapshot_keys = ("id", "displayName", "description", "compartmentId", "subnetId", "availabilityDomain",
                             "faultDomain", "shapeName", "mysqlVersion", "configurationId", "dataStorageSizeInGBs",
                             "hostnameLabel", "ipAddress", "port", "portX", "isHighlyAvailable", "deletionPolicy",
                             "backupPolicy", "maintenance", "crashRecovery", "databaseMode", "accessMode")
            backup = {
                "id": backup_id, "displayName": body.get("displayName") or f"{system['displayName']}-Backup-{now[:19]}",
                "description": body.get("description"), "compartmentId": system["compartmentId"],
                "timeCreated": now, "timeUpdated": now, "lifecycleState": "CREATING", "lifecycleDetails": None,
                "backupType": backup_type, "creationType": "MANUAL", "dbSystemId": system["id"],
                "dbSystemSnapshot": {k: system.get(k) for k in snapshot_keys}, "backupSizeInGBs": None,
                "retentionInDays": retention, "dataStorageSizeInGBs": system["dataStorageSizeInGBs"],
                "mysqlVersion": system["mysqlVersion"], "shapeName": system["shapeName"],
                "softDelete": body.get("softDelete") or "DISABLED",
                "freeformTags": body.get("freeformTags") or {}, "definedTags": body.get("definedTags") or {},
                "systemTags": {},
            }
            self.backups[backup_id] = backup
            backend = self.backends[system["id"]]
        self._later(self._take_backup, backup_id, backend)
        return dict(backup)

    def _take_backup(self, backup_id: str, backend: Backend) -> None:
        self._pause("backup")
        path = self.root / "backups" / f"{backup_id}.sql"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            backend.snapshot(path)
        except Exception as exc:  # the service's backup fails; the DB system stays as it was
            self._set(self.backups, backup_id, lifecycleState="FAILED", lifecycleDetails=f"Backup failed: {exc}")
            return
        with self.lock:
            self.backup_files[backup_id] = path
        self._set(self.backups, backup_id, lifecycleState="ACTIVE", backupSizeInGBs=1)

    def list_backups(self, query: dict) -> list[dict]:
        compartment = self._compartment(query.get("compartmentId"))
        with self.lock:
            items = [dict(b) for b in self.backups.values() if b["compartmentId"] == compartment]
        for key in ("backupId", "dbSystemId", "lifecycleState", "displayName", "creationType"):
            if key in query:
                field = "id" if key == "backupId" else key
                items = [b for b in items if b[field] == query[key]]
        key = {"timeCreated": "timeCreated", "timeUpdated": "timeUpdated", "displayName": "displayName"}.get(
            query.get("sortBy", "timeCreated"))
        if key is None:
            raise MysqlError(400, "InvalidParameter", f"sortBy {query.get('sortBy')} is not timeCreated, timeUpdated "
                                                      "or displayName")
        descending = query.get("sortOrder", "DESC") == "DESC"
        # ties (the same millisecond) in the order the backups were taken
        items = sorted(reversed(items) if descending else items, key=lambda b: b[key] or "", reverse=descending)
        summary_keys = ("id", "displayName", "description", "timeCreated", "lifecycleState", "lifecycleDetails",
                        "backupType", "creationType", "dbSystemId", "compartmentId", "dataStorageSizeInGBs",
                        "backupSizeInGBs", "retentionInDays", "mysqlVersion", "shapeName", "softDelete",
                        "freeformTags", "definedTags", "systemTags")
        return [{k: b.get(k) for k in summary_keys} for b in items]

    # ------------------------------------------------------------- DB systems
    def create_db_system(self, body: dict) -> dict:
        compartment = self._compartment(body.get("compartmentId"))
        for field in ("shapeName", "subnetId"):
            if not body.get(field):
                raise MysqlError(400, "MissingParameter", f"{field} is required")
        source = body.get("source") or {"sourceType": "NONE"}
        if source.get("sourceType") != "BACKUP":
            raise MysqlError(400, "InvalidParameter", f"source.sourceType {source.get('sourceType')}: this fake "
                                                      "creates DB systems from a backup only (sourceType BACKUP)")
        with self.lock:
            backup = self._backup(source.get("backupId") or "")
            if backup["lifecycleState"] != "ACTIVE":
                raise MysqlError(409, "IncorrectState", f"Backup {backup['id']} is {backup['lifecycleState']}")
            original = backup["dbSystemSnapshot"]
            if body.get("ipAddress"):
                self._check_address_free(body["ipAddress"])
                address = body["ipAddress"]
            else:
                address = self._free_address_near(original["ipAddress"])
            if body["shapeName"] == FREE_SHAPE:
                raise MysqlError(400, "InvalidParameter", "An Always Free DB System cannot be restored from a backup")
            policy = {"automaticBackupRetention": "DELETE", "finalBackup": "SKIP_FINAL_BACKUP",
                      "isDeleteProtected": False, **(body.get("deletionPolicy") or {})}
            db_system_id = ocids.mint("mysqldbsystem", secrets.token_hex(8), REGION)
            system = self._db_system_record(
                db_system_id, compartment, body.get("displayName") or f"mysqldbsystem{time.strftime('%Y%m%d%H%M%S')}",
                address, body["shapeName"], body["subnetId"], policy,
                {"sourceType": "BACKUP", "backupId": backup["id"]}, "CREATING")
            system.update(description=body.get("description"), hostnameLabel=body.get("hostnameLabel"),
                          freeformTags=body.get("freeformTags") or {}, definedTags=body.get("definedTags") or {},
                          mysqlVersion=original.get("mysqlVersion") or system["mysqlVersion"])
            self.db_systems[db_system_id] = system
            source_backend = self.backends[original["id"]]
            dump = self.backup_files[backup["id"]]
        self._later(self._restore, db_system_id, source_backend, dump)
        return dict(system)

    def _restore(self, db_system_id: str, source_backend: Backend, dump: Path) -> None:
        self._pause("restore")
        try:
            backend = source_backend.restore(dump)
        except Exception as exc:
            self._set(self.db_systems, db_system_id, lifecycleState="FAILED",
                      lifecycleDetails=f"Restore from backup failed: {exc}")
            return
        with self.lock:
            self.backends[db_system_id] = backend
        self._set(self.db_systems, db_system_id, lifecycleState="ACTIVE")

    def delete_db_system(self, db_system_id: str) -> None:
        with self.lock:
            system = self._db_system(db_system_id)
            if system["lifecycleState"] in ("DELETING", "DELETED"):
                return  # deleting again is accepted and changes nothing
            if (system.get("deletionPolicy") or {}).get("isDeleteProtected"):
                raise MysqlError(409, "IncorrectState", f"DB System {db_system_id} is delete protected: update its "
                                                        "deletionPolicy.isDeleteProtected to false first")
            if system["lifecycleState"] not in ("ACTIVE", "INACTIVE", "FAILED"):
                raise MysqlError(409, "IncorrectState", f"DB System {db_system_id} is {system['lifecycleState']}")
            system.update(lifecycleState="DELETING", timeUpdated=_now())
        self._later(self._delete, db_system_id)

    def _delete(self, db_system_id: str) -> None:
        self._pause("delete")
        self._set(self.db_systems, db_system_id, lifecycleState="DELETED")

    def _page(self, items: list, query: dict) -> tuple[list, dict]:
        """One page of a list and its opc-next-page header (absent on the last page)."""
        try:
            start, limit = int(query.get("page", "0")), int(query.get("limit", "100"))
        except ValueError:
            raise MysqlError(400, "InvalidParameter", "page and limit must be integers") from None
        if limit < 1 or limit > 1000:
            raise MysqlError(400, "InvalidParameter", "limit must be between 1 and 1000")
        limit = min(limit, self.page_size)
        more = start + limit < len(items)
        return items[start:start + limit], {"opc-next-page": str(start + limit)} if more else {}

    # ------------------------------------------------------------- routing
    def handle(self, method: str, path: str, query: dict, body: dict) -> tuple[int, object, dict]:
        """(status, JSON document, headers) for a call under /20190415."""
        segments = path[len(API) + 1:].split("/")
        if segments == ["backups"] and method == "POST":
            return 200, self.create_backup(body), {}
        if segments == ["backups"] and method == "GET":
            return (200, *self._page(self.list_backups(query), query))
        if len(segments) == 2 and segments[0] == "backups" and method == "GET":
            with self.lock:
                return 200, dict(self._backup(segments[1])), {}
        if segments == ["dbSystems"] and method == "POST":
            return 200, self.create_db_system(body), {}
        if len(segments) == 2 and segments[0] == "dbSystems":
            if method == "GET":
                with self.lock:
                    return 200, dict(self._db_system(segments[1])), {}
            if method == "DELETE":
                self.delete_db_system(segments[1])
                return 204, None, {}
        raise MysqlError(404, "NotFound", f"No such API {method} {path}")
