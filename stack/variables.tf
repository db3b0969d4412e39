# Inputs of the stack. Every variable has a description, a type and, where it can be wrong, a
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

variable "availability_domain" {
  description = "Availability domain for the VMs and the MySQL DB system. Empty: the first one of the region."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------

variable "use_existing_vcn" {
  description = "true: put the stack into an existing VCN and subnets (existing_* variables). false: create a new VCN with a public and a private subnet."
  type        = bool
  default     = false
}

variable "vcn_cidr" {
  description = "CIDR block of the new VCN (ignored with an existing VCN)."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(regex("^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$", var.vcn_cidr)) && can(cidrnetmask(var.vcn_cidr)) && try(cidrsubnet(var.vcn_cidr, 0, 0) == var.vcn_cidr, false)
    error_message = "The vcn_cidr must be an IPv4 network in CIDR notation whose address is the network's first address, e.g. 10.0.0.0/16 (not 10.0.0.1/16 or 10.0.0.0/33)."
  }

  validation {
    condition     = !can(cidrnetmask(var.vcn_cidr)) || try(tonumber(split("/", var.vcn_cidr)[1]) >= 16 && tonumber(split("/", var.vcn_cidr)[1]) <= 28, false)
    error_message = "The vcn_cidr prefix length must be between /16 and /28 (an OCI VCN limit)."
  }
}

variable "public_subnet_cidr" {
  description = "CIDR block of the public subnet of the VMs (with deployment_target = \"oke\": of the Kubernetes load balancer), inside vcn_cidr (ignored with an existing VCN)."
  type        = string
  default     = "10.0.1.0/24"

  validation {
    condition     = can(regex("^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$", var.public_subnet_cidr)) && can(cidrnetmask(var.public_subnet_cidr)) && try(cidrsubnet(var.public_subnet_cidr, 0, 0) == var.public_subnet_cidr, false)
    error_message = "The public_subnet_cidr must be an IPv4 network in CIDR notation whose address is the network's first address, e.g. 10.0.1.0/24."
  }

  validation {
    condition     = !can(cidrnetmask(var.public_subnet_cidr)) || try(tonumber(split("/", var.public_subnet_cidr)[1]) <= 29, false)
    error_message = "The public_subnet_cidr is too small: use /29 or larger (e.g. /24)."
  }
}

variable "private_subnet_cidr" {
  description = "CIDR block of the private subnet of the MySQL DB system, inside vcn_cidr and apart from public_subnet_cidr (ignored with an existing VCN)."
  type        = string
  default     = "10.0.2.0/24"

  validation {
    condition     = can(regex("^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$", var.private_subnet_cidr)) && can(cidrnetmask(var.private_subnet_cidr)) && try(cidrsubnet(var.private_subnet_cidr, 0, 0) == var.private_subnet_cidr, false)
    error_message = "The private_subnet_cidr must be an IPv4 network in CIDR notation whose address is the network's first address, e.g. 10.0.2.0/24."
  }

  validation {
    condition     = !can(cidrnetmask(var.private_subnet_cidr)) || try(tonumber(split("/", var.private_subnet_cidr)[1]) <= 29, false)
    error_message = "The private_subnet_cidr is too small: use /29 or larger (e.g. /24)."
  }
}

variable "existing_vcn_id" {
  description = "OCID of the existing VCN (only with use_existing_vcn)."
  type        = string
  default     = ""

  validation {
    condition     = var.existing_vcn_id == "" || can(regex("^ocid1\\.vcn\\.", var.existing_vcn_id))
    error_message = "The existing_vcn_id must be a VCN OCID (it starts with \"ocid1.vcn.\") or empty."
  }
}

variable "existing_public_subnet_id" {
  description = "OCID of an existing subnet of that VCN that allows public IPs, for the VMs (only with use_existing_vcn)."
  type        = string
  default     = ""

  validation {
    condition     = var.existing_public_subnet_id == "" || can(regex("^ocid1\\.subnet\\.", var.existing_public_subnet_id))
    error_message = "The existing_public_subnet_id must be a subnet OCID (it starts with \"ocid1.subnet.\") or empty."
  }
}

variable "existing_private_subnet_id" {
  description = "OCID of an existing subnet of that VCN for the MySQL DB system, preferably private (only with use_existing_vcn)."
  type        = string
  default     = ""

  validation {
    condition     = var.existing_private_subnet_id == "" || can(regex("^ocid1\\.subnet\\.", var.existing_private_subnet_id))
    error_message = "The existing_private_subnet_id must be a subnet OCID (it starts with \"ocid1.subnet.\") or empty."
  }
}

variable "allowed_ingress_cidr" {
  description = "Who may reach the MLflow UI/API (443) and the serving endpoint (1234): an IPv4 CIDR, e.g. your public IP as 203.0.113.7/32. 0.0.0.0/0 opens them to the internet (the password still protects them)."
  type        = string

  validation {
    condition     = can(regex("^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$", var.allowed_ingress_cidr)) && can(cidrnetmask(var.allowed_ingress_cidr))
    error_message = "The allowed_ingress_cidr must be an IPv4 CIDR such as 203.0.113.7/32 (one address) or 0.0.0.0/0 (anyone)."
  }
}

variable "ssh_source_cidr" {
  description = "IPv4 CIDR allowed to SSH (22) into the VMs. Empty (the default) keeps SSH closed."
  type        = string
  default     = ""

  validation {
    condition     = var.ssh_source_cidr == "" || (can(regex("^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$", var.ssh_source_cidr)) && can(cidrnetmask(var.ssh_source_cidr)))
    error_message = "The ssh_source_cidr must be empty (SSH closed) or an IPv4 CIDR such as 203.0.113.7/32."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key for the opc user of the VMs. Optional: without it nobody can log in over SSH."
  type        = string
  default     = ""

  validation {
    condition     = var.ssh_public_key == "" || can(regex("^(ssh-(rsa|ed25519)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+", var.ssh_public_key))
    error_message = "The ssh_public_key must be an OpenSSH public key line (ssh-ed25519 AAAA..., ssh-rsa AAAA... or ecdsa-sha2-nistp256 AAAA...) or empty."
  }
}

# ---------------------------------------------------------------------------------------------
# MySQL HeatWave
# ---------------------------------------------------------------------------------------------

variable "mysql_shape" {
  description = "MySQL HeatWave shape. MySQL.Free is the Always Free shape (one per tenancy, 50 GB storage)."
  type        = string
  default     = "MySQL.2"

  validation {
    condition     = contains(["MySQL.Free", "MySQL.2", "MySQL.4", "MySQL.8", "MySQL.16", "MySQL.32", "MySQL.48", "MySQL.64"], var.mysql_shape)
    error_message = "The mysql_shape must be one of MySQL.Free (Always Free), MySQL.2, MySQL.4, MySQL.8, MySQL.16, MySQL.32, MySQL.48 or MySQL.64."
  }
}

variable "mysql_data_storage_gb" {
  description = "Initial data storage of the MySQL DB system in GB (50-65536). The Always Free shape always uses 50."
  type        = number
  default     = 50

  validation {
    condition     = var.mysql_data_storage_gb >= 50 && var.mysql_data_storage_gb <= 65536 && floor(var.mysql_data_storage_gb) == var.mysql_data_storage_gb
    error_message = "The mysql_data_storage_gb must be a whole number of GB between 50 and 65536."
  }
}

variable "mysql_backup_retention_days" {
  description = "How many days automatic MySQL backups are kept (1-35)."
  type        = number
  default     = 7

  validation {
    condition     = var.mysql_backup_retention_days >= 1 && var.mysql_backup_retention_days <= 35 && floor(var.mysql_backup_retention_days) == var.mysql_backup_retention_days
    error_message = "The mysql_backup_retention_days must be a whole number between 1 and 35."
  }
}

variable "mysql_deletion_protection" {
  description = "Protect the MySQL DB system against deletion. When true, destroying the stack fails until you turn it off again."
  type        = bool
  default     = false
}

variable "mysql_keep_backups_on_delete" {
  description = "When the DB system is deleted (destroying the stack): true keeps a final backup and the automatic backups (they are billed as backup storage until you delete them); false deletes them with the DB system."
  type        = bool
  default     = true
}

variable "mysql_admin_username" {
  description = "Administrator user of the MySQL DB system: 1-32 letters, digits or underscores, starting with a letter; not a reserved MySQL/OCI name."
  type        = string
  default     = "mlflowadmin"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,31}$", var.mysql_admin_username))
    error_message = "The mysql_admin_username must be 1-32 characters: letters, digits or underscores, starting with a letter."
  }

  validation {
    condition     = !contains(["administrator", "ociadmin", "ocirpl", "ocidbm", "ocimonitor", "mysql.sys", "mysql.session", "mysql.infoschema", "mysql.rpl", "root", "mysql"], lower(var.mysql_admin_username))
    error_message = "The mysql_admin_username is a name MySQL HeatWave reserves (administrator, ociadmin, ocirpl, ocidbm, ocimonitor, root, mysql, mysql.*): choose another, e.g. mlflowadmin."
  }
}

variable "mysql_admin_password" {
  description = "Password of the MySQL administrator: 8-32 characters with an uppercase letter, a lowercase letter, a digit and a special character; no spaces or quotes."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.mysql_admin_password) >= 8 && length(var.mysql_admin_password) <= 32
    error_message = "The mysql_admin_password must be 8 to 32 characters long."
  }

  validation {
    condition     = can(regex("[A-Z]", var.mysql_admin_password)) && can(regex("[a-z]", var.mysql_admin_password))
    error_message = "The mysql_admin_password needs at least one uppercase and one lowercase letter."
  }

  validation {
    condition     = can(regex("[0-9]", var.mysql_admin_password))
    error_message = "The mysql_admin_password needs at least one digit."
  }

  validation {
    condition     = can(regex("[^A-Za-z0-9]", var.mysql_admin_password))
    error_message = "The mysql_admin_password needs at least one special character (not a letter or digit), e.g. - _ ! @ # %."
  }

  validation {
    condition     = !can(regex("[[:space:]\"'\\\\]", var.mysql_admin_password))
    error_message = "The mysql_admin_password must not contain spaces, quotes or backslashes."
  }
}

variable "mlflow_db_name" {
  description = "Name of the MLflow database that the tracking VM creates at first boot."
  type        = string
  default     = "mlflow"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,31}$", var.mlflow_db_name))
    error_message = "The mlflow_db_name must be 1-32 letters, digits or underscores, starting with a letter."
  }
}

variable "mlflow_db_user" {
  description = "MySQL user that MLflow connects with; the tracking VM creates it at first boot and grants it the MLflow database only. Vault generates its password (secret <name_prefix>-mlflow-db): nobody types it and Terraform never sees it."
  type        = string
  default     = "mlflow"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,31}$", var.mlflow_db_user))
    error_message = "The mlflow_db_user must be 1-32 letters, digits or underscores, starting with a letter."
  }
}

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

# ---------------------------------------------------------------------------------------------
# Compute
# ---------------------------------------------------------------------------------------------

variable "oracle_linux_version" {
  description = "Oracle Linux major version of the VMs' platform image (the newest image of that version compatible with the shape is used)."
  type        = string
  default     = "9"

  validation {
    condition     = contains(["8", "9"], var.oracle_linux_version)
    error_message = "The oracle_linux_version must be \"8\" or \"9\"."
  }
}

variable "tracking_shape" {
  description = "Flexible shape of the tracking VM. VM.Standard.A1.Flex (Arm) is Always Free up to 2 OCPUs and 12 GB for both VMs together."
  type        = string
  default     = "VM.Standard.E5.Flex"

  validation {
    condition     = contains(["VM.Standard.E3.Flex", "VM.Standard.E4.Flex", "VM.Standard.E5.Flex", "VM.Standard.E6.Flex", "VM.Standard.A1.Flex", "VM.Standard.A2.Flex", "VM.Standard3.Flex", "VM.Optimized3.Flex"], var.tracking_shape)
    error_message = "The tracking_shape must be a flexible VM shape: VM.Standard.E3.Flex, VM.Standard.E4.Flex, VM.Standard.E5.Flex, VM.Standard.E6.Flex, VM.Standard.A1.Flex, VM.Standard.A2.Flex, VM.Standard3.Flex or VM.Optimized3.Flex."
  }
}

variable "tracking_ocpus" {
  description = "OCPUs of the tracking VM (1-16)."
  type        = number
  default     = 1

  validation {
    condition     = var.tracking_ocpus >= 1 && var.tracking_ocpus <= 16 && floor(var.tracking_ocpus) == var.tracking_ocpus
    error_message = "The tracking_ocpus must be a whole number between 1 and 16."
  }
}

variable "tracking_memory_gb" {
  description = "Memory of the tracking VM in GB (4-256). MLflow runs 1 worker per 2 GB (1-4); 2 workers use about 0.65 GB."
  type        = number
  default     = 8

  validation {
    condition     = var.tracking_memory_gb >= 4 && var.tracking_memory_gb <= 256 && floor(var.tracking_memory_gb) == var.tracking_memory_gb
    error_message = "The tracking_memory_gb must be a whole number of GB between 4 and 256."
  }
}

variable "tracking_private_ip" {
  description = "Private IP of the tracking VM in the public subnet; the serving VM connects to it. Empty: the subnet's 10th address (10.0.1.10 by default). Set another free address when that one is taken in an existing subnet."
  type        = string
  default     = ""

  validation {
    condition     = var.tracking_private_ip == "" || can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", var.tracking_private_ip))
    error_message = "The tracking_private_ip must be an IPv4 address such as 10.0.1.10, or empty."
  }
}

variable "mysql_private_ip" {
  description = "Private IP of a new MySQL DB system in the private subnet, known before it exists so the VMs boot while it is created. Empty: the subnet's 10th address (10.0.2.10 by default). Set another free address when that one is taken in an existing subnet. A DB system that exists keeps its address."
  type        = string
  default     = ""

  validation {
    condition     = var.mysql_private_ip == "" || can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", var.mysql_private_ip))
    error_message = "The mysql_private_ip must be an IPv4 address such as 10.0.2.10, or empty."
  }
}

variable "tracking_image_id" {
  description = "Optional Oracle Linux image OCID for the tracking VM. Empty: the newest Oracle Linux platform image for the shape when the VM is created; the VM keeps it when newer ones appear. Setting an OCID replaces the VM with one booted from that image."
  type        = string
  default     = ""

  validation {
    condition     = var.tracking_image_id == "" || can(regex("^ocid1\\.image\\.", var.tracking_image_id))
    error_message = "The tracking_image_id must be an image OCID (it starts with \"ocid1.image.\") or empty."
  }
}

variable "serving_enabled" {
  description = "Create the serving VM, which serves a registered model over HTTPS on port 1234."
  type        = bool
  default     = true
}

variable "serving_shape" {
  description = "Flexible shape of the serving VM. VM.Standard.A1.Flex (Arm) is Always Free up to 2 OCPUs and 12 GB for both VMs together."
  type        = string
  default     = "VM.Standard.E5.Flex"

  validation {
    condition     = contains(["VM.Standard.E3.Flex", "VM.Standard.E4.Flex", "VM.Standard.E5.Flex", "VM.Standard.E6.Flex", "VM.Standard.A1.Flex", "VM.Standard.A2.Flex", "VM.Standard3.Flex", "VM.Optimized3.Flex"], var.serving_shape)
    error_message = "The serving_shape must be a flexible VM shape: VM.Standard.E3.Flex, VM.Standard.E4.Flex, VM.Standard.E5.Flex, VM.Standard.E6.Flex, VM.Standard.A1.Flex, VM.Standard.A2.Flex, VM.Standard3.Flex or VM.Optimized3.Flex."
  }
}

variable "serving_ocpus" {
  description = "OCPUs of the serving VM (1-16)."
  type        = number
  default     = 1

  validation {
    condition     = var.serving_ocpus >= 1 && var.serving_ocpus <= 16 && floor(var.serving_ocpus) == var.serving_ocpus
    error_message = "The serving_ocpus must be a whole number between 1 and 16."
  }
}

variable "serving_memory_gb" {
  description = "Memory of the serving VM in GB (4-256)."
  type        = number
  default     = 8

  validation {
    condition     = var.serving_memory_gb >= 4 && var.serving_memory_gb <= 256 && floor(var.serving_memory_gb) == var.serving_memory_gb
    error_message = "The serving_memory_gb must be a whole number of GB between 4 and 256."
  }
}

variable "serving_image_id" {
  description = "Optional Oracle Linux image OCID for the serving VM. Empty: the newest Oracle Linux platform image for the shape when the VM is created; the VM keeps it when newer ones appear. Setting an OCID replaces the VM with one booted from that image."
  type        = string
  default     = ""

  validation {
    condition     = var.serving_image_id == "" || can(regex("^ocid1\\.image\\.", var.serving_image_id))
    error_message = "The serving_image_id must be an image OCID (it starts with \"ocid1.image.\") or empty."
  }
}

variable "serving_model_name" {
  description = "Registered model the serving VM serves (it waits until the model and alias exist). Ignored when serving_model_uri is set."
  type        = string
  default     = "wine-quality"

  validation {
    condition     = var.serving_model_name == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", var.serving_model_name))
    error_message = "The serving_model_name must be 1-128 letters, digits, dots, dashes or underscores, starting with a letter or digit."
  }
}

variable "serving_model_alias" {
  description = "Alias of the registered model to serve; moving the alias in MLflow redeploys the model without touching the stack."
  type        = string
  default     = "champion"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{0,63}$", var.serving_model_alias)) && !can(regex("^(?i)(latest|v[0-9]+)$", var.serving_model_alias))
    error_message = "The serving_model_alias must be 1-64 letters, digits, dashes or underscores starting with a letter, and not \"latest\" or v<number> (MLflow reserves those)."
  }
}

variable "serving_model_uri" {
  description = "Optional fixed model URI to serve instead of name and alias, e.g. models:/wine-quality/3 or runs:/<run_id>/model."
  type        = string
  default     = ""

  validation {
    condition     = var.serving_model_uri == "" || can(regex("^(models|runs|mlflow-artifacts):/[^[:space:]]+$", var.serving_model_uri))
    error_message = "The serving_model_uri must be empty or an MLflow model URI such as models:/<name>/<version>, models:/<name>@<alias> or runs:/<run_id>/<path>."
  }
}

# ---------------------------------------------------------------------------------------------
# MLflow access
# ---------------------------------------------------------------------------------------------

variable "mlflow_username" {
  description = "User name for the MLflow UI/API and the serving endpoint (HTTP basic auth)."
  type        = string
  default     = "mlflow"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", var.mlflow_username))
    error_message = "The mlflow_username must be 1-32 letters, digits, dots, dashes or underscores, starting with a letter or digit."
  }
}

variable "mlflow_password" {
  description = "Password for the MLflow UI/API and the serving endpoint: 12-64 characters without spaces or quotes. Empty (the default): Vault generates one (secret <name_prefix>-mlflow-login; the output mlflow_password_command reads it)."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = var.mlflow_password == "" || (length(var.mlflow_password) >= 12 && length(var.mlflow_password) <= 64)
    error_message = "The mlflow_password must be 12 to 64 characters long, or empty to let Vault generate one."
  }

  validation {
    condition     = var.mlflow_password == "" || (!can(regex("[[:space:]\"'\\\\]", var.mlflow_password)) && can(regex("^[[:print:]]+$", var.mlflow_password)))
    error_message = "The mlflow_password must be printable characters without spaces, quotes or backslashes."
  }
}

variable "mlflow_users" {
  description = "Who logs in: \"shared\" (one login, mlflow_username, for everyone, checked by the auth proxy), \"per-person\" (MLflow's own users and permissions, kept in MySQL for every replica; mlflow_username is their first admin; add people with orm-pack users) or \"sso\" (per-person, and people sign in with the tenancy's OCI identity domain: sso_domain_url, sso_admin_group, sso_user_group)."
  type        = string
  default     = "shared"

  validation {
    condition     = contains(["shared", "per-person", "sso"], var.mlflow_users)
    error_message = "The mlflow_users must be \"shared\", \"per-person\" or \"sso\"."
  }
}

variable "sso_domain_url" {
  description = "With mlflow_users = \"sso\": the Domain URL of the identity domain people sign in with (Identity > Domains > the domain > Domain URL), https://idcs-<32 hex>.identity.oraclecloud.com. The stack registers a confidential application in it."
  type        = string
  default     = ""

  validation {
    condition     = var.sso_domain_url == "" || can(regex("^https://idcs-[0-9a-f]{32}\\.identity\\.[a-z0-9.-]+[a-z](:443)?/?$", var.sso_domain_url))
    error_message = "The sso_domain_url must be an identity domain's Domain URL, https://idcs-<32 hex characters>.identity.oraclecloud.com (shown on the domain's details page)."
  }
}

variable "sso_admin_group" {
  description = "With mlflow_users = \"sso\": the name of the identity domain group whose members are MLflow admins."
  type        = string
  default     = ""
}

variable "sso_user_group" {
  description = "With mlflow_users = \"sso\": the name of the identity domain group whose members are ordinary MLflow users (what they may do with others' work: mlflow_default_permission). People in neither group are refused."
  type        = string
  default     = ""
}

variable "mlflow_default_permission" {
  description = "With mlflow_users = \"per-person\" or \"sso\": what a new user may do with experiments and models others created: READ, EDIT or NO_PERMISSIONS (what they create, they manage)."
  type        = string
  default     = "READ"

  validation {
    condition     = contains(["READ", "EDIT", "NO_PERMISSIONS"], var.mlflow_default_permission)
    error_message = "The mlflow_default_permission must be READ, EDIT or NO_PERMISSIONS."
  }
}

variable "max_request_body_mb" {
  description = "Largest request body the auth proxy lets through to MLflow or the model, in MiB (413 beyond). MLflow reads a body before it checks the login, so this bounds what anyone can make it hold. Artifact uploads are exempt: they pass, of any size, once the login is checked."
  type        = number
  default     = 64

  validation {
    condition     = var.max_request_body_mb >= 1 && var.max_request_body_mb <= 10240 && floor(var.max_request_body_mb) == var.max_request_body_mb
    error_message = "The max_request_body_mb must be a whole number of MiB between 1 and 10240."
  }
}

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

# ---------------------------------------------------------------------------------------------
# OCI Data Science notebook session
# ---------------------------------------------------------------------------------------------

variable "create_notebook_session" {
  description = "Create an OCI Data Science project and a notebook session wired to MLflow: its environment names the tracking URL, the user and the Vault secret of the password, which the session reads with its own identity; this repository is cloned into it (examples/wine/train.ipynb). Needs a new VCN (the session gets its own private subnet with a NAT gateway)."
  type        = bool
  default     = false
}

variable "notebook_shape" {
  description = "Flexible shape of the notebook session."
  type        = string
  default     = "VM.Standard.E4.Flex"

  validation {
    condition     = contains(["VM.Standard.E3.Flex", "VM.Standard.E4.Flex", "VM.Standard.E5.Flex", "VM.Standard3.Flex", "VM.Optimized3.Flex"], var.notebook_shape)
    error_message = "The notebook_shape must be a flexible shape Data Science offers: VM.Standard.E3.Flex, VM.Standard.E4.Flex, VM.Standard.E5.Flex, VM.Standard3.Flex or VM.Optimized3.Flex."
  }
}

variable "notebook_ocpus" {
  description = "OCPUs of the notebook session (1-16)."
  type        = number
  default     = 1

  validation {
    condition     = var.notebook_ocpus >= 1 && var.notebook_ocpus <= 16 && floor(var.notebook_ocpus) == var.notebook_ocpus
    error_message = "The notebook_ocpus must be a whole number between 1 and 16."
  }
}

variable "notebook_memory_gb" {
  description = "Memory of the notebook session in GB (4-256)."
  type        = number
  default     = 16

  validation {
    condition     = var.notebook_memory_gb >= 4 && var.notebook_memory_gb <= 256 && floor(var.notebook_memory_gb) == var.notebook_memory_gb
    error_message = "The notebook_memory_gb must be a whole number of GB between 4 and 256."
  }
}

variable "notebook_block_storage_gb" {
  description = "Block storage of the notebook session (its /home/datascience) in GB (50-10240)."
  type        = number
  default     = 50

  validation {
    condition     = var.notebook_block_storage_gb >= 50 && var.notebook_block_storage_gb <= 10240 && floor(var.notebook_block_storage_gb) == var.notebook_block_storage_gb
    error_message = "The notebook_block_storage_gb must be a whole number of GB between 50 and 10240."
  }
}

variable "notebook_subnet_cidr" {
  description = "CIDR block of the notebook session's private subnet, inside vcn_cidr and apart from the other subnets."
  type        = string
  default     = "10.0.3.0/24"

  validation {
    condition     = can(regex("^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$", var.notebook_subnet_cidr)) && can(cidrnetmask(var.notebook_subnet_cidr)) && try(cidrsubnet(var.notebook_subnet_cidr, 0, 0) == var.notebook_subnet_cidr, false)
    error_message = "The notebook_subnet_cidr must be an IPv4 network in CIDR notation whose address is the network's first address, e.g. 10.0.3.0/24."
  }
}

variable "notebook_git_url" {
  description = "Git repository cloned into the notebook session (its examples/wine has the notebook and mlflow_connect.py)."
  type        = string
  default     = "https://github.com/oracle-quickstart/oci-mlflow"

  validation {
    condition     = can(regex("^https://[^[:space:]]+$", var.notebook_git_url))
    error_message = "The notebook_git_url must be an https:// Git URL."
  }
}

# ---------------------------------------------------------------------------------------------
# Where the tracking server runs: VMs (the default) or OKE, Oracle's managed Kubernetes
# ---------------------------------------------------------------------------------------------

variable "deployment_target" {
  description = "Where the tracking server runs: \"vm\" (the default) on a VM configured by cloud-init, with the optional serving VM; \"oke\" on a Kubernetes cluster of OKE (a basic cluster, whose control plane is free, and a node pool in a private subnet) that orm-pack oke deploy fills from the stack's outputs. With oke there is no VM: the serving endpoint and the notebook session are VM features, and container_registry must name a registry holding this release's images (a cluster cannot build them)."
  type        = string
  default     = "vm"

  validation {
    condition     = contains(["vm", "oke"], var.deployment_target)
    error_message = "The deployment_target must be \"vm\" (the tracking server on a VM, the default) or \"oke\" (on an OKE Kubernetes cluster)."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes version of the OKE cluster and its node pool, as OKE names it (v<major>.<minor>.<patch>); only with deployment_target = \"oke\". The plan checks that OKE offers it (oci ce cluster-options get --cluster-option-id all lists them)."
  type        = string
  default     = "v1.34.2"

  validation {
    condition     = can(regex("^v1\\.[0-9]{2}\\.[0-9]{1,2}$", var.kubernetes_version))
    error_message = "The kubernetes_version must be a Kubernetes version as OKE names it, with the leading v and a patch number, e.g. v1.34.2."
  }
}

variable "oke_node_shape" {
  description = "Flexible shape of the OKE worker nodes. VM.Standard.A1.Flex (Arm) is Always Free up to 2 OCPUs and 12 GB in all (e.g. 2 nodes of 1 OCPU and 6 GB); the nodes then run the aarch64 OKE image."
  type        = string
  default     = "VM.Standard.E5.Flex"

  validation {
    condition     = contains(["VM.Standard.E3.Flex", "VM.Standard.E4.Flex", "VM.Standard.E5.Flex", "VM.Standard.E6.Flex", "VM.Standard.A1.Flex", "VM.Standard.A2.Flex", "VM.Standard3.Flex", "VM.Optimized3.Flex"], var.oke_node_shape)
    error_message = "The oke_node_shape must be a flexible VM shape: VM.Standard.E3.Flex, VM.Standard.E4.Flex, VM.Standard.E5.Flex, VM.Standard.E6.Flex, VM.Standard.A1.Flex, VM.Standard.A2.Flex, VM.Standard3.Flex or VM.Optimized3.Flex."
  }
}

variable "oke_node_ocpus" {
  description = "OCPUs of each OKE worker node (1-16)."
  type        = number
  default     = 1

  validation {
    condition     = var.oke_node_ocpus >= 1 && var.oke_node_ocpus <= 16 && floor(var.oke_node_ocpus) == var.oke_node_ocpus
    error_message = "The oke_node_ocpus must be a whole number between 1 and 16."
  }
}

variable "oke_node_memory_gb" {
  description = "Memory of each OKE worker node in GB (4-256)."
  type        = number
  default     = 8

  validation {
    condition     = var.oke_node_memory_gb >= 4 && var.oke_node_memory_gb <= 256 && floor(var.oke_node_memory_gb) == var.oke_node_memory_gb
    error_message = "The oke_node_memory_gb must be a whole number of GB between 4 and 256."
  }
}

variable "oke_node_count" {
  description = "Number of OKE worker nodes (1-16). The default 2 lets the two tracking servers and the two auth proxies run on different nodes, so one node can go down or be replaced without an outage."
  type        = number
  default     = 2

  validation {
    condition     = var.oke_node_count >= 1 && var.oke_node_count <= 16 && floor(var.oke_node_count) == var.oke_node_count
    error_message = "The oke_node_count must be a whole number between 1 and 16 (2 or more keeps MLflow up while a node is replaced)."
  }
}

variable "oke_node_image_id" {
  description = "Optional OKE node image OCID (an image OKE lists for kubernetes_version and the shape's architecture). Empty: the newest Oracle Linux OKE image for kubernetes_version when the node pool is created; the pool keeps it when newer ones appear. Setting an OCID replaces the node pool with one booted from that image."
  type        = string
  default     = ""

  validation {
    condition     = var.oke_node_image_id == "" || can(regex("^ocid1\\.image\\.", var.oke_node_image_id))
    error_message = "The oke_node_image_id must be an image OCID (it starts with \"ocid1.image.\") or empty."
  }
}

variable "oke_api_subnet_cidr" {
  description = "CIDR block of the public subnet of the Kubernetes API endpoint, inside vcn_cidr and apart from the other subnets (only with deployment_target = \"oke\")."
  type        = string
  default     = "10.0.4.0/28"

  validation {
    condition     = can(regex("^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$", var.oke_api_subnet_cidr)) && can(cidrnetmask(var.oke_api_subnet_cidr)) && try(cidrsubnet(var.oke_api_subnet_cidr, 0, 0) == var.oke_api_subnet_cidr, false)
    error_message = "The oke_api_subnet_cidr must be an IPv4 network in CIDR notation whose address is the network's first address, e.g. 10.0.4.0/28."
  }

  validation {
    condition     = !can(cidrnetmask(var.oke_api_subnet_cidr)) || try(tonumber(split("/", var.oke_api_subnet_cidr)[1]) <= 29, false)
    error_message = "The oke_api_subnet_cidr is too small: use /29 or larger (e.g. /28)."
  }
}

variable "oke_workers_subnet_cidr" {
  description = "CIDR block of the private subnet of the OKE worker nodes, inside vcn_cidr and apart from the other subnets (only with deployment_target = \"oke\"). The pods get their addresses from the cluster's own overlay network (10.244.0.0/16), not from this subnet."
  type        = string
  default     = "10.0.5.0/24"

  validation {
    condition     = can(regex("^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$", var.oke_workers_subnet_cidr)) && can(cidrnetmask(var.oke_workers_subnet_cidr)) && try(cidrsubnet(var.oke_workers_subnet_cidr, 0, 0) == var.oke_workers_subnet_cidr, false)
    error_message = "The oke_workers_subnet_cidr must be an IPv4 network in CIDR notation whose address is the network's first address, e.g. 10.0.5.0/24."
  }

  validation {
    condition     = !can(cidrnetmask(var.oke_workers_subnet_cidr)) || try(tonumber(split("/", var.oke_workers_subnet_cidr)[1]) <= 29, false)
    error_message = "The oke_workers_subnet_cidr is too small: use /29 or larger (e.g. /24)."
  }
}
