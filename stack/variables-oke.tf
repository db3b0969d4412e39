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
