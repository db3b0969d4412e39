# ---------------------------------------------------------------------------------------------
# Object Storage
# ---------------------------------------------------------------------------------------------

variable "bucket_kms_key_id" {
  description = "Optional OCID of a Vault key to encrypt the artifact bucket with (customer-managed key). Empty: Oracle-managed keys."
  type        = string
  default     = ""

  validation {
    condition     = var.bucket_kms_key_id == "" || can(regex("^ocid1\\.key\\.", var.bucket_kms_key_id))
    error_message = "The bucket_kms_key_id must be a Vault key OCID (it starts with \"ocid1.key.\") or empty."
  }
}

variable "bucket_kms_vault_id" {
  description = "Vault of bucket_kms_key_id. Used only by the form to list the vault's keys."
  type        = string
  default     = ""

  validation {
    condition     = var.bucket_kms_vault_id == "" || can(regex("^ocid1\\.vault\\.", var.bucket_kms_vault_id))
    error_message = "The bucket_kms_vault_id must be a vault OCID (it starts with \"ocid1.vault.\") or empty."
  }
}

variable "artifact_store" {
  description = "How the tracking server reaches the artifact bucket: \"oci\" (the default) through the tracking VM's instance principal and a policy scoped to the bucket, with no key anywhere; \"s3\" through Object Storage's S3-compatible API with a customer secret key (s3_credentials_source)."
  type        = string
  default     = "oci"

  validation {
    condition     = contains(["oci", "s3"], var.artifact_store)
    error_message = "The artifact_store must be \"oci\" (instance principal, no key) or \"s3\" (S3-compatible API with a customer secret key)."
  }
}

variable "s3_credentials_source" {
  description = "Only with artifact_store = \"s3\": \"create\" makes a customer secret key for the current user (a user can hold 2), \"supply\" uses s3_access_key/s3_secret_key. The secret key is kept in Vault; the VM reads it from there."
  type        = string
  default     = "create"

  validation {
    condition     = contains(["create", "supply"], var.s3_credentials_source)
    error_message = "The s3_credentials_source must be \"create\" (the stack creates a customer secret key) or \"supply\" (you give s3_access_key and s3_secret_key)."
  }
}

variable "s3_access_key" {
  description = "Access key of an existing customer secret key (only with s3_credentials_source = \"supply\")."
  type        = string
  default     = ""

  validation {
    condition     = var.s3_access_key == "" || can(regex("^[0-9a-f]{40}$", var.s3_access_key))
    error_message = "The s3_access_key must be the 40-character lowercase hex access key of a customer secret key (User settings > Customer secret keys), or empty."
  }
}

variable "s3_secret_key" {
  description = "Secret key of that customer secret key (only with s3_credentials_source = \"supply\"). Shown once by OCI when the key is created."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = var.s3_secret_key == "" || can(regex("^[A-Za-z0-9+/=]{20,64}$", var.s3_secret_key))
    error_message = "The s3_secret_key must be the secret of a customer secret key (20-64 letters, digits, +, / or =), or empty."
  }
}

