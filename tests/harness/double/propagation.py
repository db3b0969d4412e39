"""What OCI's identity service makes visible only some seconds after it is written.

- A new tag namespace or tag used in `defined_tags` at once is refused: `400-InvalidParameter, Failed to
  validate tags: TagNamespace <name> does not exists`, for about 10 s and longer across regions
  (oracle-quickstart/oci-openshift#40, "It needs at least a 10 second delay"; terraform-oci-modules-
  orchestrator#67 waits 10 s).
- A new or changed policy takes effect "typically within 10 seconds" (OCI CLI reference, `iam policy
  create` and `update`): until then the services it lets in are refused. Here: a Data Science notebook
  session (the service may not yet use the subnet) answers 404-NotAuthorizedOrNotFound, and a bucket
  encrypted with a customer key (Object Storage may not yet use the key) 400-InsufficientServicePermissions,
  and a MySQL DB system created with its own certificate ("bring your own certificate": it reads the
  certificate with its resource principal, HeatWave's Resource Principals page) is refused because it
  may not read the certificate yet. The API's exact message for that case is not documented; the double
  answers as IAM does when a principal may not read a resource, 404-NotAuthorizedOrNotFound, and names
  the certificate.
- A bucket's object lifecycle policy is refused, 400-InsufficientServicePermissions, unless a policy lets
  Object Storage itself delete objects ("Allow service objectstorage-<region> to manage object-family ...":
  OCI's "Using Object Lifecycle Policies" and "Details for Object Storage" pages require it), and while that
  policy is new. Here the policy must be one the stack wrote: the double knows no other.

Every delay is multiplied by OCI_DOUBLE_TIME_SCALE, as the time_sleep double's waits are, so the tests
keep the cloud's proportions at a fraction of its pace. What was written when is kept in the double's
memory (memory.py): the stack writes identity objects through the home-region provider process and uses
them through the other.
"""
import os
import time

from .memory import opened

SCALE_ENV = "OCI_DOUBLE_TIME_SCALE"
TAG_SECONDS = 10.0
POLICY_SECONDS = 10.0


def _scale() -> float:
    return float(os.environ.get(SCALE_ENV, "1"))


def record(type_name: str, state: dict) -> None:
    """Note when an identity object the cloud propagates slowly was written."""
    now = time.time()
    with opened() as written:
        if type_name == "oci_identity_tag_namespace":
            written.setdefault("namespaces", {})[state["id"]] = state["name"]
            written.setdefault("tags", {})[state["name"]] = now
        elif type_name == "oci_identity_tag":
            namespace = written.get("namespaces", {}).get(state.get("tag_namespace_id"))
            if namespace:
                written.setdefault("tags", {})[f"{namespace}.{state['name']}"] = now
        elif type_name == "oci_identity_policy":
            # a policy delays only what its statements allow
            written.setdefault("policies", []).append([now, list(state.get("statements") or [])])


def _defined_tag_keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "defined_tags" and isinstance(inner, dict):
                yield from inner
            else:
                yield from _defined_tag_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _defined_tag_keys(inner)


def _granted_recently(policies: list, now: float, grant: str) -> bool:
    """Whether a policy written less than POLICY_SECONDS ago has a statement containing `grant`."""
    return any(now - when < POLICY_SECONDS * _scale() and any(grant in statement for statement in statements)
               for when, statements in policies)


def refused(type_name: str, config: dict) -> str | None:
    """The error OCI gives for using what is not visible yet, or None."""
    now = time.time()
    with opened() as written:
        tags, policies = written.get("tags", {}), written.get("policies", [])
    for key in _defined_tag_keys(config):
        namespace = key.split(".", 1)[0]
        for name, what in ((namespace, "TagNamespace"), (key, "Tag")):
            if name in tags and now - tags[name] < TAG_SECONDS * _scale():
                return f"400-InvalidParameter, Failed to validate tags: {what} {name} does not exists"
    if type_name == "oci_datascience_notebook_session" and _granted_recently(policies, now, "service datascience"):
        return "404-NotAuthorizedOrNotFound, Authorization failed or requested resource not found"
    key = config.get("kms_key_id")
    if type_name == "oci_objectstorage_bucket" and key and _granted_recently(policies, now, key):
        return ("400-InsufficientServicePermissions, Permissions granted to the object storage service "
                "principal to use this key are insufficient")
    if type_name == "oci_objectstorage_object_lifecycle_policy":
        allows = [(when, statements) for when, statements in policies
                  if any("service objectstorage-" in s and "object-family" in s for s in statements)]
        if not allows or _granted_recently(allows, now, "service objectstorage-"):
            return ("400-InsufficientServicePermissions, Permissions granted to the object storage service principal "
                    f"to this bucket ({config.get('bucket')}) are insufficient")
    byoc = (config.get("secure_connections") or [{}])[0] or {}
    if (type_name == "oci_mysql_mysql_db_system" and byoc.get("certificate_generation_type") == "BYOC"
            and _granted_recently(policies, now, byoc.get("certificate_id") or "leaf-certificate")):
        return ("404-NotAuthorizedOrNotFound, the DB system is not authorized to read certificate "
                f"{byoc.get('certificate_id')}")
    return None
