"""What the tests' Object Storage holds: buckets and their object versions, in a JSON file that the
provider double (a Terraform plugin process) and the Object Storage fake (a thread of the Resource
Manager fake) share, so a bucket MLflow wrote to is seen as not empty when Terraform deletes it.

    store = ObjectStore(path)
    store.create_bucket("ns", "artifacts", versioning=True)
    store.put("ns", "artifacts", "model.pkl", 1024)
    store.delete_bucket("ns", "artifacts")   # BucketNotEmpty while any version is left
"""
import contextlib
import fcntl
import json
import secrets
from datetime import datetime, timezone
from pathlib import Path

ENV_VAR = "OCI_DOUBLE_OBJECT_STORE"


class BucketNotEmpty(Exception):
    """DeleteBucket answers 409 BucketNotEmpty while any object or object version is left."""

    def __init__(self, bucket: str):
        super().__init__(f"409-BucketNotEmpty, Bucket named '{bucket}' is not empty. Delete all object versions first.")


class NoSuchBucket(Exception):
    pass


class ObjectStore:
    def __init__(self, path):
        self.path = Path(path)

    @contextlib.contextmanager
    def _data(self, write: bool = True):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            text = handle.read()
            data = json.loads(text) if text.strip() else {}
            yield data
            if write:
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(data, indent=1))

    @staticmethod
    def _key(namespace: str, bucket: str) -> str:
        return f"{namespace}/{bucket}"

    def _bucket(self, data: dict, namespace: str, bucket: str) -> dict:
        try:
            return data[self._key(namespace, bucket)]
        except KeyError:
            raise NoSuchBucket(bucket) from None

    def create_bucket(self, namespace: str, bucket: str, versioning: bool) -> None:
        with self._data() as data:
            data.setdefault(self._key(namespace, bucket), {"versioning": versioning, "versions": []})

    def delete_bucket(self, namespace: str, bucket: str) -> None:
        with self._data() as data:
            if data.get(self._key(namespace, bucket), {}).get("versions"):
                raise BucketNotEmpty(bucket)
            data.pop(self._key(namespace, bucket), None)

    def has_bucket(self, namespace: str, bucket: str) -> bool:
        with self._data(write=False) as data:
            return self._key(namespace, bucket) in data

    def put(self, namespace: str, bucket: str, name: str, size: int) -> dict:
        """A new version of `name`; without versioning it replaces the object."""
        version = {"name": name, "versionId": secrets.token_hex(16), "size": size, "isDeleteMarker": False,
                   "timeCreated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
        with self._data() as data:
            entry = self._bucket(data, namespace, bucket)
            if not entry["versioning"]:
                entry["versions"] = [v for v in entry["versions"] if v["name"] != name]
            entry["versions"].append(version)
        return version

    def versions(self, namespace: str, bucket: str) -> list[dict]:
        """Every version, newest first per name (as ListObjectVersions orders them)."""
        with self._data(write=False) as data:
            entry = self._bucket(data, namespace, bucket)
            return sorted(entry["versions"], key=lambda v: (v["name"], v["timeCreated"]), reverse=False)

    def delete_object(self, namespace: str, bucket: str, name: str, version_id: str | None = None) -> bool:
        """With a version id, that version goes for good. Without one, a versioned bucket keeps every
        version and gains a delete marker; an unversioned one drops the object. False: nothing matched."""
        with self._data() as data:
            entry = self._bucket(data, namespace, bucket)
            if version_id:
                kept = [v for v in entry["versions"] if not (v["name"] == name and v["versionId"] == version_id)]
                found = len(kept) != len(entry["versions"])
                entry["versions"] = kept
                return found
            if not any(v["name"] == name for v in entry["versions"]):
                return False
            if entry["versioning"]:
                marker = {"name": name, "versionId": secrets.token_hex(16), "size": 0, "isDeleteMarker": True,
                          "timeCreated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
                entry["versions"].append(marker)
            else:
                entry["versions"] = [v for v in entry["versions"] if v["name"] != name]
            return True
