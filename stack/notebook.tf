# Optional OCI Data Science notebook session wired to MLflow (create_notebook_session).
#
# The session lives in a private subnet of its own: Data Science sessions take a subnet but no NSG, and
# the API docs ask for a VCN with a NAT gateway for their egress (pip, the Git clone). The tracking and
# serving NSGs admit that subnet's CIDR (nsg.tf). Its environment names the tracking URL inside the VCN,
# the user and the Vault secret of the password; the session reads the secret with its resource
# principal (iam.tf grants it that one secret) through examples/wine/mlflow_connect.py, which the Git
# clone puts beside the notebook. With mlflow_users = "per-person" or "sso" that is the notebook's own
# MLflow user (mlflow-notebook, an ordinary user) and its secret <prefix>-notebook-login, never the
# admin's; with "shared" it is the one shared login (vault.tf).

locals {
  notebook_enabled = var.create_notebook_session
  notebook_environment = local.notebook_enabled ? merge(
    {
      MLFLOW_TRACKING_URI                  = local.tracking_internal_uri
      MLFLOW_TRACKING_USERNAME             = local.notebook_login.username
      MLFLOW_TRACKING_PASSWORD_SECRET_OCID = local.notebook_login.secret
    },
    local.serving_enabled ? { MLFLOW_SERVING_URL = "https://${local.instances["serving"].private_ip}:${local.serving_port}" } : {},
    # the servers' CA (tls.tf): mlflow_connect.py reads its certificate as the session and verifies with it
    { MLFLOW_TRACKING_CA_OCID = local.tls_ca_id },
  ) : {}
}

# In: only ICMP "fragmentation needed" from the VCN (path MTU discovery), as on the other subnets.
# Out: HTTPS (packages, Git, OCI APIs, the tracking server), the serving port and HTTP for mirrors.
resource "oci_core_security_list" "notebook" {
  count = local.notebook_enabled ? 1 : 0

  compartment_id = var.compartment_ocid
  vcn_id         = local.vcn_id
  display_name   = "${var.name_prefix}-notebook-sl"
  freeform_tags  = local.freeform_tags

  ingress_security_rules {
    description = "Path MTU discovery inside the VCN"
    protocol    = "1"
    source      = var.vcn_cidr
    stateless   = false

    icmp_options {
      type = 3
      code = 4
    }
  }

  dynamic "egress_security_rules" {
    for_each = {
      "HTTPS out: packages, Git, OCI APIs, the tracking server" = { destination = "0.0.0.0/0", port = 443 }
      "HTTP out: package mirrors"                               = { destination = "0.0.0.0/0", port = 80 }
      "The model endpoint on the serving VM"                    = { destination = var.vcn_cidr, port = local.serving_port }
    }
    content {
      description = egress_security_rules.key
      destination = egress_security_rules.value.destination
      protocol    = "6"
      stateless   = false

      tcp_options {
        min = egress_security_rules.value.port
        max = egress_security_rules.value.port
      }
    }
  }
}

resource "oci_datascience_project" "mlflow" {
  count = local.notebook_enabled ? 1 : 0

  compartment_id = var.compartment_ocid
  display_name   = "${var.name_prefix}-mlflow"
  description    = "Notebooks of the MLflow stack ${var.name_prefix}"
  freeform_tags  = local.freeform_tags
}

resource "oci_datascience_notebook_session" "mlflow" {
  count = local.notebook_enabled ? 1 : 0

  compartment_id = var.compartment_ocid
  project_id     = oci_datascience_project.mlflow[0].id
  display_name   = "${var.name_prefix}-notebook"
  freeform_tags  = local.freeform_tags

  notebook_session_config_details {
    shape                     = var.notebook_shape
    subnet_id                 = oci_core_subnet.mlflow["notebook"].id
    block_storage_size_in_gbs = var.notebook_block_storage_gb

    notebook_session_shape_config_details {
      ocpus         = var.notebook_ocpus
      memory_in_gbs = var.notebook_memory_gb
    }
  }

  notebook_session_runtime_config_details {
    custom_environment_variables = local.notebook_environment

    notebook_session_git_config_details {
      notebook_session_git_repo_config_collection {
        url = var.notebook_git_url
      }
    }
  }

  # Data Science attaches the session to the subnet only once its service policy is in effect (waits.tf).
  depends_on = [oci_identity_policy.datascience, time_sleep.policy]
}
