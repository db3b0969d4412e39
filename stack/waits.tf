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

resource "time_sleep" "datascience_policy" {
  count = length(oci_identity_policy.datascience)

  create_duration = "30s"
  triggers = {
    policy     = oci_identity_policy.datascience[0].id
    statements = sha256(join("\n", oci_identity_policy.datascience[0].statements))
  }
}

resource "time_sleep" "bucket_key_policy" {
  count = length(oci_identity_policy.bucket_kms)

  create_duration = "30s"
  triggers = {
    policy     = oci_identity_policy.bucket_kms[0].id
    statements = sha256(join("\n", oci_identity_policy.bucket_kms[0].statements))
  }
}
