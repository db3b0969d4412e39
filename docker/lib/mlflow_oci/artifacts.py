"""`oci://<bucket>@<namespace>/<prefix>` artifact store for MLflow on OCI Object Storage.

The tracking server writes and reads artifacts here for its clients (proxied artifacts), so only
the server needs Object Storage rights, and it gets them from its instance principal. Files larger
than one part go up as a multipart upload with parallel parts (the SDK's UploadManager); downloads
stream to disk in chunks, so memory stays flat whatever the artifact's size.
"""
import os
import posixpath
import sys
from urllib.parse import urlparse

from mlflow.entities import FileInfo
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from . import auth

# Files above one part go up in parts of this size, 4 at a time (OCI allows 10,000 parts: 320 GB).
PART_SIZE_MB = int(os.environ.get("MLFLOW_OCI_PART_SIZE_MB", "32"))
DOWNLOAD_CHUNK = 8 * 1024 * 1024


def parse_oci_uri(uri: str) -> tuple[str, str, str]:
    """oci://bucket@namespace/some/prefix -> (bucket, namespace, 'some/prefix')."""
    parsed = urlparse(uri)
    if parsed.scheme != "oci" or "@" not in parsed.netloc:
        raise MlflowException(f"not an OCI Object Storage URI (oci://<bucket>@<namespace>/<prefix>): {uri}")
    bucket, namespace = parsed.netloc.split("@", 1)
    if not bucket or not namespace:
        raise MlflowException(f"bucket and namespace must both be given: {uri}")
    return bucket, namespace, parsed.path.strip("/")


class OciArtifactRepository(ArtifactRepository):
    """MLflow's artifact repository interface over one bucket and prefix."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None,
                 client=None) -> None:
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        self.bucket, self.namespace, self.prefix = parse_oci_uri(artifact_uri)
        self._client = client

    @property
    def client(self):
        if self._client is None:
            self._client = auth.object_storage_client()
        return self._client

    def _key(self, *parts: str | None) -> str:
        return posixpath.join(self.prefix, *[p.strip("/") for p in parts if p]).strip("/")

    # ------------------------------------------------------------------------------- writes
    def log_artifact(self, local_file, artifact_path=None):
        self._upload(local_file, self._key(artifact_path, os.path.basename(local_file)))

    def log_artifacts(self, local_dir, artifact_path=None):
        local_dir = os.path.abspath(local_dir)
        for root, _, files in os.walk(local_dir):
            relative = os.path.relpath(root, local_dir)
            for name in files:
                sub_path = None if relative == "." else relative.replace(os.sep, "/")
                self._upload(os.path.join(root, name), self._key(artifact_path, sub_path, name))

    def _upload(self, local_file: str, key: str) -> None:
        from oci.object_storage import UploadManager

        manager = UploadManager(self.client, allow_multipart_uploads=True, allow_parallel_uploads=True,
                                parallel_process_count=min(4, self.max_workers))
        manager.upload_file(self.namespace, self.bucket, key, local_file, part_size=PART_SIZE_MB * 1024 * 1024)

    def delete_artifacts(self, artifact_path=None):
        root = self._key(artifact_path)
        for name in self._object_names(root):
            if name == root or name.startswith(root + "/") or not root:
                self.client.delete_object(self.namespace, self.bucket, name)

    # -------------------------------------------------------------------------------- reads
    def list_artifacts(self, path=None):
        directory = self._key(path)
        prefix = directory + "/" if directory else ""
        infos = []
        start = None
        while True:
            kwargs = {"prefix": prefix, "delimiter": "/", "fields": "name,size"}
            if start:
                kwargs["start"] = start
            listing = self.client.list_objects(self.namespace, self.bucket, **kwargs).data
            for sub in listing.prefixes or []:
                infos.append(FileInfo(self._relative(sub.rstrip("/")), True, None))
            for obj in listing.objects or []:
                if obj.name == directory:  # `path` names a file: MLflow expects an empty list
                    return []
                infos.append(FileInfo(self._relative(obj.name), False, obj.size))
            start = listing.next_start_with
            if not start:
                break
        return sorted(infos, key=lambda info: info.path)

    def _relative(self, key: str) -> str:
        return posixpath.relpath(key, self.prefix) if self.prefix else key

    def _object_names(self, prefix: str):
        start = None
        while True:
            kwargs = {"prefix": prefix, "fields": "name"}
            if start:
                kwargs["start"] = start
            listing = self.client.list_objects(self.namespace, self.bucket, **kwargs).data
            yield from (obj.name for obj in listing.objects or [])
            start = listing.next_start_with
            if not start:
                return

    def _download_file(self, remote_file_path, local_path):
        response = self.client.get_object(self.namespace, self.bucket, self._key(remote_file_path))
        with open(local_path, "wb") as out:
            for chunk in response.data.raw.stream(DOWNLOAD_CHUNK, decode_content=False):
                out.write(chunk)


def check(uri: str) -> str | None:
    """None when the store at `uri` can be listed with this machine's identity, else why not (one line)."""
    import oci

    try:
        repository = OciArtifactRepository(uri)
        repository.client.list_objects(repository.namespace, repository.bucket, prefix=repository.prefix, limit=1)
    except MlflowException as exc:
        return exc.message
    except auth.AuthError as exc:
        return str(exc)
    except oci.exceptions.ServiceError as exc:
        return (f"cannot list {uri}: {exc.status} {exc.code}: check that the bucket exists and that a policy lets "
                "this instance's dynamic group 'manage objects' in it")
    except Exception as exc:  # network errors, as the SDK's vendored requests raises them
        return f"cannot reach Object Storage for {uri}: {type(exc).__name__}: {auth.first_line(exc)}"
    return None


if __name__ == "__main__":  # python3 -m mlflow_oci.artifacts check oci://bucket@namespace/prefix
    if len(sys.argv) != 3 or sys.argv[1] != "check":
        sys.exit("usage: python3 -m mlflow_oci.artifacts check oci://<bucket>@<namespace>/<prefix>")
    problem = check(sys.argv[2])
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(3)
