# Resource Manager authenticates the provider itself and needs only the region.
# Terraform CLI users fill the API-key variables (provider.auto.tfvars.template); empty values are
# passed as null so the provider falls back to its own configuration (~/.oci/config, env vars).
provider "oci" {
  region               = var.region
  tenancy_ocid         = var.tenancy_ocid
  user_ocid            = local.api_key.user_ocid
  fingerprint          = local.api_key.fingerprint
  private_key_path     = local.api_key.private_key_path
  private_key_password = local.api_key.private_key_password
}
