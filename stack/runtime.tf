# What the VMs fetch at first boot that does not fit in their user_data (OCI keeps instance metadata
# under 32 KB): each image's hashed requirements lock (docker/requirements-<role>.lock), in a small
# private bucket of its own (its objects go with every version when the stack is destroyed, so the
# bucket can go too: Object Storage deletes no bucket that holds a version), read through an
# object-scoped, read-only pre-authenticated request. The lock is public information; the VM checks
# what it downloads against the SHA-256 carried in its user_data before it builds with it.

resource "oci_objectstorage_bucket" "runtime" {
  compartment_id        = var.compartment_ocid
  namespace             = local.namespace
  name                  = "${var.name_prefix}-runtime-${substr(sha256(var.compartment_ocid), 0, 8)}"
  access_type           = "NoPublicAccess"
  versioning            = "Enabled"
  object_events_enabled = true
  freeform_tags         = local.freeform_tags
}

resource "oci_objectstorage_object" "requirements_lock" {
  for_each = local.vm_shapes

  namespace    = local.namespace
  bucket       = oci_objectstorage_bucket.runtime.name
  object       = "requirements-${each.key}.lock"
  content      = file("${local.docker_dir}/requirements-${each.key}.lock")
  content_type = "text/plain"

  delete_all_object_versions = true
}

resource "oci_objectstorage_preauthrequest" "requirements_lock" {
  for_each = local.vm_shapes

  namespace    = local.namespace
  bucket       = oci_objectstorage_bucket.runtime.name
  name         = "${var.name_prefix}-${each.key}-requirements-lock"
  access_type  = "ObjectRead"
  object_name  = oci_objectstorage_object.requirements_lock[each.key].object
  time_expires = "2036-01-01T00:00:00Z" # the VMs' first boot, and a rebuild years later, still reach it
}

locals {
  requirements_lock = {
    for role in keys(local.vm_shapes) : role => {
      REQUIREMENTS_LOCK_URL    = oci_objectstorage_preauthrequest.requirements_lock[role].full_path
      REQUIREMENTS_LOCK_SHA256 = filesha256("${local.docker_dir}/requirements-${role}.lock")
    }
  }
}
