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

