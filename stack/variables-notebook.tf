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

