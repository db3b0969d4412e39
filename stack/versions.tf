# Terraform 1.0 is the floor: the offline tests run 1.0.3 and Resource Manager runs 1.5.x.
# So no optional() object attributes, no pre/postconditions and no moved blocks in this stack:
# guards are variable validation blocks and the checks in checks.tf.
terraform {
  required_version = ">= 1.0.0"

  required_providers {
    oci = {
      source  = "oracle/oci"
      version = "~> 7.19"
    }
  }
}
