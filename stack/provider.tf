# Resource Manager authenticates the provider itself and needs only the region.
# Terraform CLI users fill the API-key variables (provider.auto.tfvars.template); empty values are
# passed as null so the provider falls back to its own configuration (~/.oci/config, env vars).
# An API key with a passphrase: keep it in ~/.oci/config (pass_phrase) and leave these empty;
# a passphrase never becomes a Terraform variable (it would end up in the state and the plan).
provider "oci" {
  region           = var.region
  tenancy_ocid     = var.tenancy_ocid
  user_ocid        = local.api_key.user_ocid
  fingerprint      = local.api_key.fingerprint
  private_key_path = local.api_key.private_key_path
}

# Identity (IAM) accepts creates, updates and deletes only through the tenancy's home region, and the
# provider does not redirect them: every oci_identity_* resource goes through this alias. Reading the
# region subscriptions works from any region.
data "oci_identity_region_subscriptions" "home" {
  tenancy_id = var.tenancy_ocid

  filter {
    name   = "is_home_region"
    values = [true]
  }
}

provider "oci" {
  alias            = "home"
  region           = data.oci_identity_region_subscriptions.home.region_subscriptions[0].region_name
  tenancy_ocid     = var.tenancy_ocid
  user_ocid        = local.api_key.user_ocid
  fingerprint      = local.api_key.fingerprint
  private_key_path = local.api_key.private_key_path
}
