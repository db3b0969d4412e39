# Resource Manager runs Terraform 1.5.x only, so 1.5's language is the stack's: preconditions, moved
# blocks, check blocks, optional object attributes; nothing newer (tests/stack/test_terraform_language.py).
# The oci provider is pinned to the release whose schema the tests' provider double serves: without a
# pin, Resource Manager takes the newest 7.x. hashicorp/time waits where OCI needs time (waits.tf). No lock file ships with the stack: Resource Manager manages the
# dependency lock file of new and updated stacks itself, within these constraints.
terraform {
  required_version = ">= 1.5"

  required_providers {
    oci = {
      source  = "oracle/oci"
      version = "~> 7.19.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13.0"
    }
  }
}
