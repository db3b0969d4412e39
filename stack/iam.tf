# Who may read what: one dynamic group per VM role, matching exactly this stack's instance of that role,
# and one policy whose statements name this stack's secrets and bucket and nothing else:
#   tracking  reads its secrets (MySQL admin, MLflow DB user, login, S3 key with artifact_store = "s3")
#             and manages objects in the artifact bucket (artifact_store = "oci")
#   serving   reads the login secret (to talk to the tracking server and to guard its own endpoint)
# IAM writes go to the home region (provider oci.home). With create_iam_policies = false nothing here is
# created and the outputs iam_dynamic_groups and iam_statements say what an administrator must add;
# the statements then name the dynamic groups instead of their OCIDs.

locals {
  iam_suffix = substr(sha256(var.compartment_ocid), 0, 8) # dynamic group names are unique per tenancy
  dynamic_group_names = {
    for role in keys(local.vm_shapes) : role => "${var.name_prefix}-${role}-${local.iam_suffix}"
  }
  dynamic_group_rules = {
    for role, name in local.dynamic_group_names : name => "ALL {instance.id = '${local.instances[role].id}'}"
  }
  iam_subjects = {
    for role, name in local.dynamic_group_names : role => (
      var.create_iam_policies ? "dynamic-group id ${oci_identity_dynamic_group.vm[role].id}" : "dynamic-group ${name}"
    )
  }

  readable_secrets = {
    tracking = [for name in local.secret_names : local.secret_ids[name]]
    serving  = [local.secret_ids["mlflow-login"]]
  }
  iam_statements = flatten([
    for role in keys(local.vm_shapes) : concat(
      [format("Allow %s to read secret-bundles in compartment id %s where any {%s}",
        local.iam_subjects[role], var.compartment_ocid,
      join(", ", [for id in local.readable_secrets[role] : "target.secret.id = '${id}'"]))],
      role == "tracking" && var.artifact_store == "oci" ? [
        "Allow ${local.iam_subjects[role]} to manage objects in compartment id ${var.compartment_ocid} where target.bucket.name = '${local.bucket_name}'",
      ] : [],
    )
  ])
}

resource "oci_identity_dynamic_group" "vm" {
  for_each = var.create_iam_policies ? local.dynamic_group_names : {}
  provider = oci.home

  compartment_id = var.tenancy_ocid
  name           = each.value
  description    = "The ${each.key} VM of the MLflow stack ${var.name_prefix}"
  matching_rule  = local.dynamic_group_rules[each.value]
  freeform_tags  = local.freeform_tags
}

resource "oci_identity_policy" "vm" {
  count    = var.create_iam_policies ? 1 : 0
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-vms-${local.iam_suffix}"
  description    = "Lets the VMs of the MLflow stack ${var.name_prefix} read their Vault secrets and write the artifact bucket"
  statements     = local.iam_statements
  freeform_tags  = local.freeform_tags
}
