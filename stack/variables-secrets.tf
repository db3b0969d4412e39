# ---------------------------------------------------------------------------------------------
# Secrets and identity
# ---------------------------------------------------------------------------------------------

variable "vault_ocid" {
  description = "Existing OCI Vault to keep this stack's secrets in (with vault_key_ocid). Empty: the stack creates a vault (type DEFAULT, no charge) and a software-protected AES key."
  type        = string
  default     = ""

  validation {
    condition     = var.vault_ocid == "" || can(regex("^ocid1\\.vault\\.", var.vault_ocid))
    error_message = "The vault_ocid must be a vault OCID (it starts with \"ocid1.vault.\") or empty."
  }
}

variable "vault_key_ocid" {
  description = "Master encryption key of vault_ocid that encrypts the secrets (an AES key). Set it together with vault_ocid, or leave both empty."
  type        = string
  default     = ""

  validation {
    condition     = var.vault_key_ocid == "" || can(regex("^ocid1\\.key\\.", var.vault_key_ocid))
    error_message = "The vault_key_ocid must be a Vault key OCID (it starts with \"ocid1.key.\") or empty."
  }
}

variable "create_iam_policies" {
  description = "Create the dynamic groups of this stack's VMs and the policies that let them read their Vault secrets and write the artifact bucket (in the home region; needs the right to manage dynamic groups and policies). false: an administrator adds the statements printed in the output iam_statements. With deployment_target = \"oke\" the stack creates the tag namespace of its worker nodes either way (their dynamic group matches its tag)."
  type        = bool
  default     = true
}


variable "tls_ca_key_ocid" {
  description = "An existing HSM-protected RSA key (of any vault) for the stack's private certificate authority to sign with, when a policy already lets CAs use it (e.g. with create_iam_policies = false). Empty: the stack creates <prefix>-ca (HSM, RSA 2048) in the vault it uses."
  type        = string
  default     = ""

  validation {
    condition     = var.tls_ca_key_ocid == "" || can(regex("^ocid1\\.key\\.", var.tls_ca_key_ocid))
    error_message = "The tls_ca_key_ocid must be a Vault key OCID (it starts with \"ocid1.key.\") or empty."
  }
}
