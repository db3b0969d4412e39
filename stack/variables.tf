# Inputs of the stack, one file per concern (variables-*.tf); here the ones Resource Manager fills
# and the general ones. Every variable has a description, a type and, where it can be wrong, a
# validation whose message says what to change. Cross-variable rules (overlapping CIDRs, shape vs
# image, serving without a model) live in checks.tf because before Terraform 1.9 a validation sees its
# own variable only (Resource Manager runs 1.5). schema.yaml shows these variables as the Resource Manager form.

# ---------------------------------------------------------------------------------------------
# Filled by Resource Manager (and by provider.auto.tfvars for the Terraform CLI)
# ---------------------------------------------------------------------------------------------

variable "tenancy_ocid" {
  description = "OCID of the tenancy. Resource Manager fills it in."
  type        = string

  validation {
    condition     = can(regex("^ocid1\\.tenancy\\.", var.tenancy_ocid))
    error_message = "The tenancy_ocid must be a tenancy OCID (it starts with \"ocid1.tenancy.\")."
  }
}

variable "compartment_ocid" {
  description = "OCID of the compartment that receives every resource of this stack. Resource Manager fills it with the stack's compartment."
  type        = string

  validation {
    condition     = can(regex("^ocid1\\.(compartment|tenancy)\\.", var.compartment_ocid))
    error_message = "The compartment_ocid must be a compartment OCID (\"ocid1.compartment....\") or the tenancy OCID for the root compartment."
  }
}

variable "region" {
  description = "OCI region identifier, e.g. us-ashburn-1. Resource Manager fills it in."
  type        = string

  validation {
    # Every OCI region identifier, in every realm: us-ashburn-1, us-gov-ashburn-1, me-dcc-muscat-1, ...
    condition     = can(regex("^[a-z]{2}-([a-z]+-)+[0-9]+$", var.region))
    error_message = "The region must be a region identifier such as us-ashburn-1 or eu-frankfurt-1 (not a region key like IAD)."
  }
}

variable "current_user_ocid" {
  description = "OCID of the user running the stack. Resource Manager fills it in; used only with artifact_store = \"s3\" and s3_credentials_source = \"create\", to make that user's Object Storage access key."
  type        = string
  default     = ""

  validation {
    condition     = var.current_user_ocid == "" || can(regex("^ocid1\\.user\\.", var.current_user_ocid))
    error_message = "The current_user_ocid must be a user OCID (it starts with \"ocid1.user.\") or empty."
  }
}

# API-key authentication for Terraform CLI users. Resource Manager ignores these; leave them empty
# to use the provider's own configuration (~/.oci/config or OCI_* environment variables).

variable "user_ocid" {
  description = "Terraform CLI only: OCID of the user whose API key signs the requests. Empty in Resource Manager."
  type        = string
  default     = ""

  validation {
    condition     = var.user_ocid == "" || can(regex("^ocid1\\.user\\.", var.user_ocid))
    error_message = "The user_ocid must be a user OCID (it starts with \"ocid1.user.\") or empty."
  }
}

variable "fingerprint" {
  description = "Terraform CLI only: fingerprint of the API signing key (aa:bb:...:ff). Empty in Resource Manager."
  type        = string
  default     = ""

  validation {
    condition     = var.fingerprint == "" || can(regex("^([0-9a-f]{2}:){15}[0-9a-f]{2}$", var.fingerprint))
    error_message = "The fingerprint must look like 12:34:56:78:9a:bc:de:f0:12:34:56:78:9a:bc:de:f0 (16 lowercase hex pairs) or be empty."
  }
}

variable "private_key_path" {
  description = "Terraform CLI only: path of the PEM private key of the API signing key. Empty in Resource Manager."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------------------------------------
# General
# ---------------------------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of every display name and of the bucket name: 2-16 lowercase letters, digits or dashes, starting with a letter."
  type        = string
  default     = "mlflow"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.name_prefix)) && !can(regex("-$", var.name_prefix))
    error_message = "The name_prefix must be 2-16 characters: lowercase letters, digits or dashes, starting with a letter and not ending with a dash (e.g. \"mlflow\" or \"team-a\")."
  }
}

variable "container_registry" {
  description = "Registry the VMs pull this release's tracking and serving images from (<registry>/oci-mlflow-<role>:<release>, by digest where the release records one). A VM builds its image from docker/ when the pull fails; empty: always build (VMs only: an OKE cluster pulls and cannot build)."
  type        = string
  default     = "ghcr.io/oracle-quickstart"

  validation {
    condition     = var.container_registry == "" || can(regex("^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$", var.container_registry))
    error_message = "The container_registry must be a registry host with an optional path, e.g. ghcr.io/oracle-quickstart or iad.ocir.io/mytenancy, or empty."
  }
}

variable "mlflow_version" {
  description = "MLflow version of the tracking server: 3.17.2 (this release's, the default), or 3.16.1 or 3.15.2, the previous versions a deployment may come from and go back to. Changing it replaces the tracking VM (its user_data changes): the new VM runs that version's pre-checks on the database and migrates it at boot; when they refuse, it migrates nothing and runs the version that last served the database, saying why in its boot log. Back up first: orm-pack upgrade --to VERSION takes a backup and checks the plan on the VM before it applies."
  type        = string
  default     = "3.17.2"

  validation {
    condition     = contains(["3.17.2", "3.16.1", "3.15.2"], var.mlflow_version)
    error_message = "The mlflow_version must be 3.17.2 (this release's), 3.16.1 or 3.15.2 (to go back to): this release has images for those three only; for a newer MLflow, upgrade the stack to the release that runs it."
  }
}

variable "availability_domain" {
  description = "Availability domain for the VMs and the MySQL DB system. Empty: the first one of the region."
  type        = string
  default     = ""
}
