# OCI makes some identity writes usable only seconds after they succeed: a new tag namespace or tag
# used at once in defined_tags is refused ("400-InvalidParameter … TagNamespace … does not exist", for
# about 10 s and longer across regions, the home region being where the stack writes them), and a new
# policy takes effect "typically within 10 seconds". What uses them waits here first (hashicorp/time,
# which Resource Manager fetches from the Terraform Registry). A wait starts again when what it covers
# is created anew or its statements change.

resource "time_sleep" "oke_node_tag" {
  count = local.oke_enabled ? 1 : 0

  create_duration = "30s"
  triggers = {
    namespace = oci_identity_tag_namespace.oke[0].id
    tag       = oci_identity_tag.oke_node_pool[0].id
  }
}

# The policies something waits for, by what waits: each exists only with its feature.
locals {
  waited_policies = merge(
    { for policy in oci_identity_policy.datascience : "datascience" => policy },
    { for policy in oci_identity_policy.bucket_kms : "bucket_key" => policy },
    { for policy in oci_identity_policy.tls_ca : "tls_ca" => policy },
    { for policy in oci_identity_policy.object_lifecycle : "object_lifecycle" => policy },
  )
}

resource "time_sleep" "policy" {
  for_each = local.waited_policies

  create_duration = "30s"
  triggers = {
    policy     = each.value.id
    statements = sha256(join("\n", each.value.statements))
  }
}

# The DB system reads its certificate while it is created (database.tf), and the policy that allows it names
# that certificate, which the CA issues after its own wait above: a wait of its own.
resource "time_sleep" "mysql_certificate_policy" {
  count = var.create_iam_policies ? 1 : 0

  create_duration = "30s"
  triggers = {
    policy     = oci_identity_policy.mysql_certificate[0].id
    statements = sha256(join("\n", oci_identity_policy.mysql_certificate[0].statements))
  }
}
