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

