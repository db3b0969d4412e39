"""The Object Storage API (`/n/{namespace}/b/{bucket}/...`) beside the Resource Manager fake, on the
same loopback server and signature check: what orm-pack destroy and an SDK client use. Its contents
are the shared ObjectStore, so the provider double sees the same bucket when a DESTROY job deletes it.

Routes: GetBucket, ListObjectVersions (paged by opc-next-page), PutObject, DeleteObject (with or
without versionId; a versioned bucket keeps the versions and gains a delete marker).
"""
from urllib.parse import unquote

from harness.objectstore import NoSuchBucket, ObjectStore

COMPARTMENT_A = "ocid1.compartment.oc1..aaaaaaaahbi7m5qn5a66envartcbaj47n6h63dko6v2cc7hpv7njg7ysvevq"


class ObjectStorageError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def is_object_storage(path: str) -> bool:
    return path.startswith("/n/")


def is_put_object(method: str, path: str) -> bool:
    parts = path.split("?")[0].split("/")
    return method == "PUT" and len(parts) >= 6 and parts[3] == "b" and parts[5] == "o"


def handle(store: ObjectStore, method: str, path: str, query: dict, body: bytes, page_size: int):
    """(status, JSON body or None, headers) for one request; raises ObjectStorageError."""
    parts = [unquote(p) for p in path.split("/")[1:]]   # n, ns, b, bucket, ...
    if len(parts) < 4 or parts[0] != "n" or parts[2] != "b":
        raise ObjectStorageError(404, "NotFound", f"no such Object Storage path {path}")
    namespace, bucket, rest = parts[1], parts[3], parts[4:]
    try:
        if not rest and method == "GET":
            if not store.has_bucket(namespace, bucket):
                raise NoSuchBucket(bucket)
            return 200, {"namespace": namespace, "name": bucket, "compartmentId": COMPARTMENT_A,
                         "versioning": "Enabled"}, {}
        if rest == ["objectversions"] and method == "GET":
            versions = store.versions(namespace, bucket)
            start = int(query.get("page", "0"))
            limit = min(int(query.get("limit", "1000")), page_size)
            chunk = versions[start:start + limit]
            next_page = str(start + limit) if start + limit < len(versions) else None
            return 200, {"items": chunk, "prefixes": []}, {"opc-next-page": next_page}
        if len(rest) >= 2 and rest[0] == "o":
            name = "/".join(rest[1:])
            if method == "PUT":
                version = store.put(namespace, bucket, name, len(body))
                return 200, None, {"etag": version["versionId"], "version-id": version["versionId"]}
            if method == "DELETE":
                if not store.delete_object(namespace, bucket, name, query.get("versionId")):
                    raise ObjectStorageError(404, "ObjectNotFound", f"The object '{name}' was not found in the "
                                             f"bucket '{bucket}'")
                return 204, None, {}
    except NoSuchBucket:
        raise ObjectStorageError(404, "BucketNotFound", f"Either the bucket named '{bucket}' does not exist in the "
                                 f"namespace '{namespace}' or you are not authorized to access it") from None
    raise ObjectStorageError(404, "NotFound", f"no route for {method} {path}")
