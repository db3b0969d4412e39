"""The artifact bucket before a destroy: what it holds, and emptying it when the user asks.

Object Storage will not delete a bucket that holds any object version (409 BucketNotEmpty) and the
provider cannot empty it, so a DESTROY job would stop halfway, with the database already gone and the
bucket and its artifacts left behind. orm-pack looks first.

    bucket = ArtifactBucket(client, namespace, name)
    contents = bucket.contents()          # objects, versions, bytes
    bucket.empty(on_progress)             # deletes every version, delete markers included
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from orm_pack.cloud import ociconfig
from orm_pack.cloud.resource_manager import all_pages
from orm_pack.errors import ExitCode, UserError


@dataclass(frozen=True)
class BucketContents:
    namespace: str
    bucket: str
    objects: int       # names with a live (not deleted) newest version
    versions: int      # every version, old ones and delete markers included
    bytes: int

    @property
    def empty(self) -> bool:
        return self.versions == 0

    def describe(self) -> str:
        return (f"bucket {self.bucket} holds {self.objects} artifact file(s) in {self.versions} object version(s) "
                f"({self.bytes / 1048576:.1f} MB)")

    def copy_out_command(self) -> str:
        return (f"oci os object bulk-download --namespace {self.namespace} --bucket-name {self.bucket} "
                "--download-dir ./mlflow-artifacts")


class ArtifactBucket:
    def __init__(self, client, namespace: str, name: str, page_size: int = 1000):
        self.client, self.namespace, self.name, self.page_size = client, namespace, name, page_size

    def _versions(self) -> list:
        try:
            return all_pages(self.client.list_object_versions, self.namespace, self.name, limit=self.page_size,
                             fields="name,size,timeCreated")
        except ociconfig.network_errors() as exc:
            raise UserError(f"cannot reach Object Storage ({self.client.base_client.endpoint}) to look at bucket "
                            f"{self.name} before the destroy: {type(exc).__name__}; check your network, or pass "
                            "--object-storage-endpoint; nothing was destroyed", ExitCode.SERVICE) from None

    def contents(self) -> BucketContents | None:
        """None when the bucket does not exist (any more)."""
        import oci

        try:
            versions = self._versions()
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                return None
            raise
        newest: dict[str, object] = {}
        for version in versions:
            if version.name not in newest or version.time_created > newest[version.name].time_created:
                newest[version.name] = version
        live = sum(1 for v in newest.values() if not v.is_delete_marker)
        return BucketContents(self.namespace, self.name, live, len(versions),
                              sum(v.size or 0 for v in versions if not v.is_delete_marker))

    def empty(self, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Delete every object version (delete markers too); returns how many went."""
        versions = self._versions()
        for done, version in enumerate(versions, 1):
            self.client.delete_object(self.namespace, self.name, version.name, version_id=version.version_id)
            if on_progress:
                on_progress(done, len(versions))
        return len(versions)
