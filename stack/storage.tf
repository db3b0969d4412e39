# Artifact store: a private, versioned Object Storage bucket. The tracking server writes it through its
# instance principal (artifact_store = "oci", iam.tf) or, as an option, through the S3-compatible
# endpoint with a customer secret key. Artifacts are proxied: clients never get any storage access.

resource "oci_objectstorage_bucket" "artifacts" {
  compartment_id        = var.compartment_ocid
  namespace             = local.namespace
  name                  = local.bucket_name
  access_type           = "NoPublicAccess"
  versioning            = "Enabled"
  object_events_enabled = true
  kms_key_id            = var.bucket_kms_key_id == "" ? null : var.bucket_kms_key_id
  freeform_tags         = local.freeform_tags

  # the key's policy, and the seconds OCI takes to apply it (waits.tf)
  depends_on = [oci_identity_policy.bucket_kms, time_sleep.policy]
}

# Object Storage encrypts with a customer-managed key only when the service may use that key.
resource "oci_identity_policy" "bucket_kms" {
  count    = var.bucket_kms_key_id == "" ? 0 : 1
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-bucket-kms"
  description    = "Lets Object Storage in ${var.region} use the key that encrypts the ${local.bucket_name} bucket"
  statements = [
    "Allow service objectstorage-${var.region} to use keys in compartment id ${var.compartment_ocid} where target.key.id = '${var.bucket_kms_key_id}'",
  ]
  freeform_tags = local.freeform_tags
}

# S3-compatible credentials for the tracking VM (artifact_store = "s3" only). OCI allows 2 customer secret
# keys per user: with 2 already, choose s3_credentials_source = "supply" and give an existing key instead.
# The provider keeps the key in the state; the VM reads it from Vault (vault.tf).
resource "oci_identity_customer_secret_key" "mlflow" {
  count    = local.create_s3_key ? 1 : 0
  provider = oci.home

  user_id      = var.current_user_ocid
  display_name = "${var.name_prefix}-mlflow-artifacts"
}

# The bucket is versioned: an artifact deleted (housekeeping removes those of runs deleted for good) or
# overwritten keeps its previous version, and a multipart upload a client abandoned keeps its parts, until
# these rules remove them. Object Storage applies them as its own service principal, which needs a policy of
# its own ("Using Object Lifecycle Policies"); without the stack's IAM (create_iam_policies = false) there is
# no such policy to wait for, so no rules: iam_statements lists the statement, and the rules can be added once
# it exists.
resource "oci_objectstorage_object_lifecycle_policy" "artifacts" {
  count = var.create_iam_policies ? 1 : 0

  namespace = local.namespace
  bucket    = oci_objectstorage_bucket.artifacts.name

  rules {
    name        = "delete-previous-versions"
    action      = "DELETE"
    target      = "previous-object-versions"
    time_amount = var.previous_versions_kept_days
    time_unit   = "DAYS"
    is_enabled  = true
  }
  rules {
    name        = "abort-unfinished-uploads"
    action      = "ABORT"
    target      = "multipart-uploads"
    time_amount = var.unfinished_uploads_kept_days
    time_unit   = "DAYS"
    is_enabled  = true
  }

  depends_on = [time_sleep.policy]
}

resource "oci_identity_policy" "object_lifecycle" {
  count    = var.create_iam_policies ? 1 : 0
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-bucket-lifecycle"
  description    = "Lets Object Storage in ${var.region} apply the lifecycle rules of the ${local.bucket_name} bucket"
  statements     = local.object_lifecycle_statements
  freeform_tags  = local.freeform_tags
}
