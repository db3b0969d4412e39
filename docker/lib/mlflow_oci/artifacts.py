"""`oci://<bucket>@<namespace>/<prefix>` artifact store for MLflow on OCI Object Storage.

The tracking server writes and reads artifacts here for its clients (proxied artifacts), so only
the server needs Object Storage rights, and it gets them from its instance principal. Files larger
than one part go up as a multipart upload with parallel parts (the SDK's UploadManager); downloads
stream to disk in chunks, so memory stays flat whatever the artifact's size.

Direct transfers (MLflow's multipart upload and presigned download interfaces, which MLflow clients
use for files of MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE / ..._DOWNLOAD_... and more, 500 MB by
default): for an upload the server creates a pre-authenticated request (PAR) that may write that one
object and expires after MLFLOW_OCI_UPLOAD_PAR_SECONDS, starts a multipart upload through it
(`opc-multipart: true`) and hands the client one URL per part under the upload's access URI; the parts
go from the client straight to Object Storage, and the server commits the parts with the ETags the client
reports (CommitMultipartUpload), or aborts, and deletes the PAR either way. For a download it hands out
a read PAR for that object expiring after MLflow's MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS. Creating
PARs needs PAR_MANAGE on the bucket; without it (or with MLFLOW_OCI_DIRECT_TRANSFERS=false) the store
offers neither interface and clients go through the server as before.
"""
import os
import posixpath
import sys
import time
from datetime import datetime, timezone
from urllib.parse import urlparse

from mlflow.entities import FileInfo
from mlflow.entities.multipart_upload import CreateMultipartUploadResponse, MultipartUploadCredential
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.store.artifact.artifact_repo import ArtifactRepository, MultipartDownloadMixin, MultipartUploadMixin

from mlflow_oci import switches

from . import auth

# Files above one part go up in parts of this size, 4 at a time (OCI allows 10,000 parts: 320 GB).
PART_SIZE_MB = int(os.environ.get("MLFLOW_OCI_PART_SIZE_MB", "32"))
DOWNLOAD_CHUNK = 8 * 1024 * 1024
MAX_PARTS = 10000            # Object Storage's limit for one multipart upload
UPLOAD_SEPARATOR = "."       # MLflow's upload id: "<Object Storage upload id>.<PAR id>"


def direct_transfers() -> bool:
    return switches.on("MLFLOW_OCI_DIRECT_TRANSFERS")


def upload_par_seconds() -> int:
    return int(os.environ.get("MLFLOW_OCI_UPLOAD_PAR_SECONDS", "3600"))


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

    # ------------------------------------------------------------------- pre-authenticated requests
    def _create_par(self, key: str, access_type: str, seconds: int):
        from oci.object_storage.models import CreatePreauthenticatedRequestDetails

        expires = datetime.fromtimestamp(time.time() + seconds, timezone.utc)
        details = CreatePreauthenticatedRequestDetails(
            name=f"mlflow-{access_type.lower()}-{int(time.time())}", object_name=key, access_type=access_type,
            time_expires=expires)
        return self.client.create_preauthenticated_request(self.namespace, self.bucket, details).data

    def _delete_par(self, par_id: str, key: str) -> None:
        """Deletes the upload's PAR, if it is one for `key` (the id came back from a client)."""
        import oci

        try:
            par = self.client.get_preauthenticated_request(self.namespace, self.bucket, par_id).data
            if par.object_name == key:
                self.client.delete_preauthenticated_request(self.namespace, self.bucket, par_id)
        except oci.exceptions.ServiceError as exc:
            if exc.status != 404:  # gone already: expired and cleaned up, or deleted
                raise

    def _url(self, access_uri: str) -> str:
        return self.client.base_client.endpoint.rstrip("/") + access_uri


class OciDirectArtifactRepository(OciArtifactRepository, MultipartUploadMixin, MultipartDownloadMixin):
    """The store with direct transfers: clients move large files to and from Object Storage themselves."""

    def create_multipart_upload(self, local_file, num_parts=1, artifact_path=None):
        import requests

        if not 1 <= int(num_parts) <= MAX_PARTS:
            raise MlflowException(f"a multipart upload has 1 to {MAX_PARTS} parts (asked for {num_parts}): "
                                  "raise MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", INVALID_PARAMETER_VALUE)
        key = self._key(artifact_path, os.path.basename(local_file))
        par = self._create_par(key, "ObjectWrite", upload_par_seconds())
        try:
            response = requests.put(self._url(par.access_uri), headers={"opc-multipart": "true"}, timeout=60)
            response.raise_for_status()
            upload = response.json()
        except BaseException:
            self._delete_par(par.id, key)
            raise
        access_uri = upload["accessUri"]
        credentials = [MultipartUploadCredential(url=self._url(access_uri) + str(number), part_number=number,
                                                 headers={})
                       for number in range(1, int(num_parts) + 1)]
        return CreateMultipartUploadResponse(upload_id=f"{upload['uploadId']}{UPLOAD_SEPARATOR}{par.id}",
                                             credentials=credentials)

    @staticmethod
    def _split(upload_id: str) -> tuple[str, str]:
        upload, _, par_id = (upload_id or "").rpartition(UPLOAD_SEPARATOR)
        if not upload or not par_id:
            raise MlflowException(f"not an upload id this server handed out: {upload_id!r}", INVALID_PARAMETER_VALUE)
        return upload, par_id

    def complete_multipart_upload(self, local_file, upload_id, parts=None, artifact_path=None):
        import oci
        from oci.object_storage.models import CommitMultipartUploadDetails, CommitMultipartUploadPartDetails

        key = self._key(artifact_path, os.path.basename(local_file))
        upload, par_id = self._split(upload_id)
        details = CommitMultipartUploadDetails(parts_to_commit=[
            CommitMultipartUploadPartDetails(part_num=part.part_number, etag=part.etag) for part in parts or []])
        try:
            self.client.commit_multipart_upload(self.namespace, self.bucket, key, upload, details)
        except oci.exceptions.ServiceError as exc:
            raise MlflowException(f"Object Storage refused the commit of {key}: {exc.status} {exc.code}: "
                                  f"{exc.message}", INVALID_PARAMETER_VALUE) from None
        finally:
            self._delete_par(par_id, key)

    def abort_multipart_upload(self, local_file, upload_id, artifact_path=None):
        import oci

        key = self._key(artifact_path, os.path.basename(local_file))
        upload, par_id = self._split(upload_id)
        try:
            self.client.abort_multipart_upload(self.namespace, self.bucket, key, upload)
        except oci.exceptions.ServiceError as exc:
            if exc.status != 404:  # committed or aborted already
                raise
        finally:
            self._delete_par(par_id, key)

    def get_download_presigned_url(self, artifact_path, expiration=300):
        import oci
        from mlflow.entities.presigned_download import PresignedDownloadUrlResponse

        key = self._key(artifact_path)
        try:
            head = self.client.head_object(self.namespace, self.bucket, key)
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                raise MlflowException(f"no artifact {artifact_path}", RESOURCE_DOES_NOT_EXIST) from None
            raise
        par = self._create_par(key, "ObjectRead", int(expiration))
        return PresignedDownloadUrlResponse(url=self._url(par.access_uri), headers={},
                                            file_size=int(head.headers["content-length"]))


def repository(artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None, client=None):
    """MLflow's entry point for oci://: the store with direct transfers unless MLFLOW_OCI_DIRECT_TRANSFERS
    is false (the entrypoint sets it when this machine may not create PARs)."""
    kind = OciDirectArtifactRepository if direct_transfers() else OciArtifactRepository
    return kind(artifact_uri, tracking_uri, registry_uri, client=client)


def check_direct(store: OciArtifactRepository) -> str | None:
    """None when this identity may create (and delete) a PAR in the store's bucket, else why not."""
    import oci

    try:
        par = store._create_par(store._key(".mlflow-par-check"), "ObjectRead", 60)
        store.client.delete_preauthenticated_request(store.namespace, store.bucket, par.id)
    except oci.exceptions.ServiceError as exc:
        return (f"cannot create a pre-authenticated request in {store.bucket}: {exc.status} {exc.code} "
                "(the policy lacks PAR_MANAGE on the bucket)")
    return None


def check(uri: str) -> str | None:
    """None when the store at `uri` can be listed with this machine's identity, else why not (one line)."""
    import oci

    try:
        store = OciArtifactRepository(uri)
        store.client.list_objects(store.namespace, store.bucket, prefix=store.prefix, limit=1)
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
    # exit 3 with the reason on stderr: the store cannot be used. Otherwise stdout says how clients move
    # large files: "direct", or "proxied: <why>" (MLFLOW_OCI_DIRECT_TRANSFERS=false or no PAR_MANAGE).
    if len(sys.argv) != 3 or sys.argv[1] != "check":
        sys.exit("usage: python3 -m mlflow_oci.artifacts check oci://<bucket>@<namespace>/<prefix>")
    problem = check(sys.argv[2])
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(3)
    if not direct_transfers():
        print("proxied: MLFLOW_OCI_DIRECT_TRANSFERS is false")
    else:
        why = check_direct(OciArtifactRepository(sys.argv[2]))
        print(f"proxied: {why}" if why else "direct")
