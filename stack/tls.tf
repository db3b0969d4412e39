# TLS that clients verify (docs/tls.md): a private root CA in OCI Certificates issues a certificate to each
# endpoint for the addresses its clients use, and OCI renews it before it expires. The VMs read their
# certificate's current bundle, private key included, through their instance principal at boot and on a
# timer (userdata/mlflow-refresh-tls.sh), and keep the CA's certificate, with which the serving proxy
# verifies the tracking server and the tracking server verifies MySQL. The MySQL DB system presents its own
# certificate from the same CA (HeatWave's "bring your own certificate", database.tf). On OKE the load
# balancer passes TLS through to the proxy pods, which read their certificate the same way at start and in
# a sidecar that reloads nginx on renewal (oke/base/proxy.yaml); every pod keeps the CA's certificate.
#
#   <prefix>-ca                   an HSM-protected RSA key in the vault the stack uses (its own, or the
#                                 user's vault_ocid): a CA signs with a hardware-protected asymmetric key,
#                                 the secrets' key is AES. tls_ca_key_ocid gives an existing one instead.
#   <prefix>-ca-<suffix>          the root CA. A destroyed CA is only scheduled for deletion and keeps its
#                                 name, so the name carries a suffix of the key's OCID: a new deployment
#                                 of the same prefix makes a new key, hence a new name.
#   <prefix>-<endpoint>-<hash>    one certificate per endpoint: each VM role ("vm"), for its reserved public
#                                 IP and its private IP; mysql ("service"), for the DB system's private
#                                 IP; on OKE oke-lb ("service"), for the load balancer's reserved public IP
#                                 (public_ips.tf), which exists before the cluster, so its OCID goes straight
#                                 into oke_deploy_settings, no secret in between
#                                 (IP subject alternative names: the endpoints have no DNS name); the
#                                 hash is of the CA's suffix and the addresses, so a certificate for new
#                                 addresses never asks for the name of the one it replaces.
#   <prefix>-tls-<role>           a Vault secret holding a VM's certificate's OCID (no secret value). The
#                                 certificate names the VM's public IP, which exists only once the VM does,
#                                 so the VM's user_data cannot carry the certificate's OCID (a cycle): it
#                                 carries the secret's name, which the stack chooses, and reads it by name
#                                 as it reads the single sign-on credentials (sso.tf).
#
# IAM (iam.tf): the CA may use its key (a policy of its own, waited for before the CA is created: the VMs'
# policy names the VMs, which come after their certificates); each VM reads its own certificate with the
# private key, and the CA's bundle; the DB system reads its certificate (policy "mysql_certificate", waited
# for before the DB system, which reads it when it is created); on OKE the worker nodes (every pod of a basic
# cluster has their identity) read the load balancer's certificate with the private key, and the CA's bundle.

locals {
  create_tls_key = var.tls_ca_key_ocid == ""
  tls_ca_key_id  = local.create_tls_key ? oci_kms_key.tls_ca[0].id : var.tls_ca_key_ocid
  # The management endpoint of the vault the key goes into: the stack's own vault, or the user's.
  tls_key_management_endpoint = local.create_vault ? oci_kms_vault.mlflow[0].management_endpoint : try(data.oci_kms_vault.existing[0].management_endpoint, "")
  tls_suffix                  = substr(sha256(local.tls_ca_key_id), 0, 8)
  tls_ca_id                   = oci_certificates_management_certificate_authority.mlflow.id

  # The addresses each role's certificate names: the reserved public IP, then the private IP the VCN's
  # clients use (the serving VM reaches the tracking server there). The private IP is also the common name:
  # nginx checks proxy_ssl_name against DNS names and the common name only (X509_check_host), never an IP
  # subject alternative name; browsers and Python clients check the IP SANs.
  tls_addresses = {
    for role in keys(local.vm_shapes) : role => [
      oci_core_public_ip.vm[role].ip_address,
      role == "tracking" ? local.tracking_private_ip : local.instances[role].private_ip,
    ]
  }
  tls_certificate_ids = { for role, cert in oci_certificates_management_certificate.vm : role => cert.id }
  # The services whose addresses the stack chooses before any VM exists: MySQL's private IP (locals.tf),
  # which the tracking server connects to, and on OKE the load balancer's reserved public IP, which the proxy
  # pods present the certificate for (the load balancer passes TLS through). A resource of their own, so that
  # the DB system, created with its certificate, never waits for the VMs (they wait for MySQL at boot).
  tls_service_addresses = merge({ mysql = [local.mysql_private_ip] },
  local.oke_enabled ? { oke-lb = [oci_core_public_ip.oke_lb[0].ip_address] } : {})
  tls_mysql_certificate_id = oci_certificates_management_certificate.service["mysql"].id
  oke_tls_certificate_id   = local.oke_enabled ? oci_certificates_management_certificate.service["oke-lb"].id : ""
  # The VM reads its certificate's OCID from a Vault secret of this name (below), by name.
  tls_certificate_secret_names = { for role in keys(local.vm_shapes) : role => "${var.name_prefix}-tls-${role}" }

  # Where the VMs keep the CA's certificate (the serving proxy and the supervisor verify with it).
  tls_ca_file = "/etc/pki/nginx/mlflow-ca.pem"

  # Reads the CA's certificate with the OCI CLI (Cloud Shell), into the file clients verify with.
  tls_ca_command = "oci certificates certificate-authority-bundle get --certificate-authority-id ${local.tls_ca_id} --query 'data.\"certificate-pem\"' --raw-output > mlflow-ca.pem"
}

data "oci_kms_vault" "existing" {
  count    = local.create_tls_key && !local.create_vault ? 1 : 0
  vault_id = var.vault_ocid
}

resource "oci_kms_key" "tls_ca" {
  count = local.create_tls_key ? 1 : 0

  compartment_id      = var.compartment_ocid
  display_name        = "${var.name_prefix}-ca"
  management_endpoint = local.tls_key_management_endpoint
  protection_mode     = "HSM" # a CA's key must be HSM-protected and asymmetric (OCI Certificates docs)
  freeform_tags       = local.freeform_tags

  key_shape {
    algorithm = "RSA"
    length    = 256 # bytes: RSA 2048
  }
}

resource "oci_certificates_management_certificate_authority" "mlflow" {
  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-ca-${local.tls_suffix}"
  description    = "Private CA of the MLflow stack ${var.name_prefix}: issues its endpoints' certificates"
  kms_key_id     = local.tls_ca_key_id
  freeform_tags  = local.freeform_tags

  certificate_authority_config {
    config_type       = "ROOT_CA_GENERATED_INTERNALLY"
    signing_algorithm = "SHA256_WITH_RSA"
    subject {
      common_name  = "MLflow ${var.name_prefix} CA"
      organization = "oci-mlflow"
    }
  }

  # The CA may use its key only once the policy that says so applies (waits.tf).
  depends_on = [time_sleep.policy]
}

resource "oci_certificates_management_certificate" "vm" {
  for_each = local.tls_addresses

  compartment_id = var.compartment_ocid
  # Its addresses are in its name: new addresses (a replaced serving VM's private IP) make a new certificate,
  # and the one it replaces keeps its name while pending deletion.
  name          = "${var.name_prefix}-${each.key}-${substr(sha256("${local.tls_suffix} ${join(" ", local.tls_addresses[each.key])}"), 0, 8)}"
  description   = "The MLflow stack ${var.name_prefix}'s ${each.key} endpoint"
  freeform_tags = local.freeform_tags

  certificate_config {
    config_type                     = "ISSUED_BY_INTERNAL_CA"
    certificate_profile_type        = "TLS_SERVER"
    issuer_certificate_authority_id = local.tls_ca_id
    key_algorithm                   = "RSA2048"
    signature_algorithm             = "SHA256_WITH_RSA"
    subject {
      common_name = local.tls_addresses[each.key][1]
    }
    dynamic "subject_alternative_names" {
      for_each = local.tls_addresses[each.key]
      content {
        type  = "IP"
        value = subject_alternative_names.value
      }
    }
    # A year from the apply that creates it; OCI renews it from then on (the rule below).
    validity {
      time_of_validity_not_after = timeadd(plantimestamp(), "8760h")
    }
  }

  # A new version every 90 days, issued 30 days before that (ISO 8601 durations; the interval must be
  # shorter than the validity, the advance shorter than the interval). The VMs pick it up on their timer.
  certificate_rules {
    rule_type              = "CERTIFICATE_RENEWAL_RULE"
    renewal_interval       = "P90D"
    advance_renewal_period = "P30D"
  }

  lifecycle {
    # The validity is set once, at creation: a later plan's time is not a change (renewal keeps it current).
    ignore_changes = [certificate_config[0].validity]
  }
}

# Before MySQL's certificate, the CA existed only on VMs (a count).
moved {
  from = oci_certificates_management_certificate_authority.mlflow[0]
  to   = oci_certificates_management_certificate_authority.mlflow
}

resource "oci_certificates_management_certificate" "service" {
  for_each = local.tls_service_addresses

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-${each.key}-${substr(sha256("${local.tls_suffix} ${join(" ", each.value)}"), 0, 8)}"
  description    = "The MLflow stack ${var.name_prefix}'s ${each.key} endpoint"
  freeform_tags  = local.freeform_tags

  # As a VM's (above), for its one address: the IP SAN and the common name.
  certificate_config {
    config_type                     = "ISSUED_BY_INTERNAL_CA"
    certificate_profile_type        = "TLS_SERVER"
    issuer_certificate_authority_id = local.tls_ca_id
    key_algorithm                   = "RSA2048"
    signature_algorithm             = "SHA256_WITH_RSA"
    subject {
      common_name = each.value[0]
    }
    dynamic "subject_alternative_names" {
      for_each = each.value
      content {
        type  = "IP"
        value = subject_alternative_names.value
      }
    }
    validity {
      time_of_validity_not_after = timeadd(plantimestamp(), "8760h")
    }
  }

  certificate_rules {
    rule_type              = "CERTIFICATE_RENEWAL_RULE"
    renewal_interval       = "P90D"
    advance_renewal_period = "P30D"
  }

  lifecycle {
    ignore_changes = [certificate_config[0].validity]
  }
}

resource "oci_vault_secret" "tls" {
  for_each = local.tls_certificate_ids

  compartment_id = var.compartment_ocid
  vault_id       = local.vault_id
  key_id         = local.vault_key_id
  secret_name    = local.tls_certificate_secret_names[each.key]
  description    = "MLflow stack ${var.name_prefix}: the OCID of the ${each.key} VM's TLS certificate"
  freeform_tags  = local.freeform_tags

  secret_content {
    content_type = "BASE64"
    content      = base64encode(each.value)
  }
}
