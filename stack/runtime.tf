# What the VMs fetch at first boot that does not fit in their user_data (OCI keeps all of an instance's
# metadata under 32,000 bytes; the project's budget for user_data is 28 KiB), in a small private bucket
# of its own, one pair of objects per VM role:
#   * runtime-<role>.json: the role's docker/ files (the Dockerfile and what it copies, the nginx
#     template and render.sh, docker/lib), a JSON map of repository path -> base64 content. The
#     bootstrap unpacks it to /opt/mlflow/src/<path>, the Dockerfiles' build context, before anything
#     uses those files (the proxy render, the image build fallback).
#   * requirements-<role>.lock: the image's hashed requirements lock, fetched only when the VM builds
#     its image instead of pulling the release's; for the tracking role also requirements-tracking-<version>.lock
#     of each previous MLflow version it may build (mlflow_version, mlflow-upgrade).
# Each is read through an object-scoped, read-only pre-authenticated request, and the VM checks what it
# downloads against the SHA-256 carried in its user_data before it uses any of it (and refuses a path
# that would leave /opt/mlflow/src). The files are public information (they are the repository's).
# The objects go with every version when the stack is destroyed, so the bucket can go too: Object
# Storage deletes no bucket that holds a version.

locals {
  # docker/ files each VM needs, at the same relative paths as in the repository (the Dockerfiles'
  # build context is the repository root: /opt/mlflow/src on the VM).
  docker_files = {
    tracking = concat([
      "docker/Dockerfile-tracking",
      "docker/tracking/entrypoint.sh",
      "docker/tracking/init_db.py",
      "docker/tracking/served_model.py",
      "docker/tracking/service_users.py",
    ], local.proxy_files, local.docker_lib_files)
    serving = concat(
      ["docker/Dockerfile-serving", "docker/serving/supervisor.py", "docker/serving/launcher.py",
      "docker/serving/legacy_adapter.py", "docker/serving/model-egress.sh"],
      local.proxy_files,
      [for name in ["__init__", "auth", "certificates", "ocids", "secrets"] : "docker/lib/mlflow_oci/${name}.py"],
    )
  }
  # The auth proxy each VM renders: the template, render.sh and the auth-<mode> / fronts-<kind> files
  # render.sh writes into it, and tls-self-signed.sh for the certificate.
  proxy_files = [for f in sort(fileset(local.docker_dir, "nginx/{mlflow-proxy.conf.template,render.sh,tls-self-signed.sh,auth-*.conf,fronts-*.conf}")) : "docker/${f}"]
  # docker/lib, the instance-principal runtime: the tracking image takes all of it (the oci:// store,
  # Vault secrets), the serving image only what reads secrets (Dockerfile-serving copies the same).
  docker_lib_files = [for f in sort(fileset(local.docker_dir, "lib/**")) : "docker/${f}" if length(regexall("__pycache__", f)) == 0]

  # The locks the VMs may build with: each role's, and the tracking image's of each previous MLflow version
  # (keyed tracking-<version>), for the tracking VM alone.
  requirements_locks = merge(
    { for role in keys(local.vm_shapes) : role => "requirements-${role}.lock" },
    contains(keys(local.vm_shapes), "tracking") ? {
      for version in slice(local.mlflow_versions, 1, length(local.mlflow_versions)) : "tracking-${version}" => "requirements-tracking-${version}.lock"
    } : {},
  )

  # One JSON object per role (jsonencode sorts the keys, so the same files give the same bytes).
  runtime_files_json = {
    for role in keys(local.vm_shapes) : role => jsonencode({
      for f in local.docker_files[role] : f => filebase64("${local.assets_dir}/${f}")
    })
  }
}

resource "oci_objectstorage_bucket" "runtime" {
  compartment_id        = var.compartment_ocid
  namespace             = local.namespace
  name                  = "${var.name_prefix}-runtime-${substr(sha256(var.compartment_ocid), 0, 8)}"
  access_type           = "NoPublicAccess"
  versioning            = "Enabled"
  object_events_enabled = true
  freeform_tags         = local.freeform_tags
}

resource "oci_objectstorage_object" "runtime_files" {
  for_each = local.vm_shapes

  namespace    = local.namespace
  bucket       = oci_objectstorage_bucket.runtime.name
  object       = "runtime-${each.key}.json"
  content      = local.runtime_files_json[each.key]
  content_type = "application/json"

  delete_all_object_versions = true
}

resource "oci_objectstorage_preauthrequest" "runtime_files" {
  for_each = local.vm_shapes

  namespace    = local.namespace
  bucket       = oci_objectstorage_bucket.runtime.name
  name         = "${var.name_prefix}-${each.key}-runtime-files"
  access_type  = "ObjectRead"
  object_name  = oci_objectstorage_object.runtime_files[each.key].object
  time_expires = "2036-01-01T00:00:00Z" # the VMs' first boot, and a rebuild years later, still reach it
}

resource "oci_objectstorage_object" "requirements_lock" {
  for_each = local.requirements_locks

  namespace    = local.namespace
  bucket       = oci_objectstorage_bucket.runtime.name
  object       = each.value
  content      = file("${local.docker_dir}/${each.value}")
  content_type = "text/plain"

  delete_all_object_versions = true
}

resource "oci_objectstorage_preauthrequest" "requirements_lock" {
  for_each = local.requirements_locks

  namespace    = local.namespace
  bucket       = oci_objectstorage_bucket.runtime.name
  name         = "${var.name_prefix}-${each.key}-requirements-lock"
  access_type  = "ObjectRead"
  object_name  = oci_objectstorage_object.requirements_lock[each.key].object
  time_expires = "2036-01-01T00:00:00Z" # the VMs' first boot, and a rebuild years later, still reach it
}

locals {
  # What user_data carries of them: the URL and the SHA-256 of each object (/etc/mlflow/runtime.env); the
  # tracking VM's previous versions' locks as REQUIREMENTS_LOCK_URL_<version with _> / _SHA256_<version with _>.
  runtime_settings = {
    for role in keys(local.vm_shapes) : role => merge(
      {
        RUNTIME_FILES_URL        = oci_objectstorage_preauthrequest.runtime_files[role].full_path
        RUNTIME_FILES_SHA256     = sha256(local.runtime_files_json[role])
        REQUIREMENTS_LOCK_URL    = oci_objectstorage_preauthrequest.requirements_lock[role].full_path
        REQUIREMENTS_LOCK_SHA256 = filesha256("${local.docker_dir}/requirements-${role}.lock")
      },
      merge([
        for key, lock in local.requirements_locks : {
          "REQUIREMENTS_LOCK_URL_${replace(trimprefix(key, "${role}-"), ".", "_")}"    = oci_objectstorage_preauthrequest.requirements_lock[key].full_path
          "REQUIREMENTS_LOCK_SHA256_${replace(trimprefix(key, "${role}-"), ".", "_")}" = filesha256("${local.docker_dir}/${lock}")
        } if startswith(key, "${role}-")
      ]...),
    )
  }
}
