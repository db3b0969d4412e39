# Network security groups: one per role. The rules are data, keyed by a sentence that is also the
# rule's description in the console, and ONE resource turns them into NSG rules.
#   tracking: HTTPS 443 from allowed_ingress_cidr and from the serving VM; SSH only if asked.
#   serving:  HTTPS 1234 from allowed_ingress_cidr; SSH only if asked.
#   mysql:    3306/33060 from the tracking NSG only.
# Egress is as narrow as the boot needs: HTTPS/HTTP out (OS packages, container images, PyPI,
# Object Storage), MySQL to the DB NSG, and the serving VM's calls to the tracking server.

resource "oci_core_network_security_group" "tracking" {
  compartment_id = var.compartment_ocid
  vcn_id         = local.vcn_id
  display_name   = "${var.name_prefix}-tracking-nsg"
  freeform_tags  = local.freeform_tags
}

resource "oci_core_network_security_group" "serving" {
  count = var.serving_enabled ? 1 : 0

  compartment_id = var.compartment_ocid
  vcn_id         = local.vcn_id
  display_name   = "${var.name_prefix}-serving-nsg"
  freeform_tags  = local.freeform_tags
}

resource "oci_core_network_security_group" "mysql" {
  compartment_id = var.compartment_ocid
  vcn_id         = local.vcn_id
  display_name   = "${var.name_prefix}-mysql-nsg"
  freeform_tags  = local.freeform_tags
}

locals {
  nsg_ids = {
    tracking = oci_core_network_security_group.tracking.id
    serving  = try(oci_core_network_security_group.serving[0].id, null)
    mysql    = oci_core_network_security_group.mysql.id
  }

  # nsg: the group the rule belongs to; peer: a CIDR, or "nsg:<role>" for another group.
  tracking_rules = merge(
    {
      "Allow HTTPS to MLflow from the allowed CIDR" = {
        nsg = "tracking", direction = "INGRESS", protocol = "6", peer = var.allowed_ingress_cidr, port = local.tracking_port
      }
      "Allow HTTPS out for packages, images and Object Storage" = {
        nsg = "tracking", direction = "EGRESS", protocol = "6", peer = "0.0.0.0/0", port = 443
      }
      "Allow HTTP out for OS package mirrors" = {
        nsg = "tracking", direction = "EGRESS", protocol = "6", peer = "0.0.0.0/0", port = 80
      }
      "Allow MySQL classic protocol to the DB system" = {
        nsg = "tracking", direction = "EGRESS", protocol = "6", peer = "nsg:mysql", port = 3306
      }
      "Allow MySQL X protocol to the DB system" = {
        nsg = "tracking", direction = "EGRESS", protocol = "6", peer = "nsg:mysql", port = 33060
      }
    },
    var.serving_enabled ? {
      "Allow HTTPS to MLflow from the serving VM" = {
        nsg = "tracking", direction = "INGRESS", protocol = "6", peer = "nsg:serving", port = local.tracking_port
      }
    } : {},
    var.ssh_source_cidr != "" ? {
      "Allow SSH to the tracking VM from the SSH CIDR" = {
        nsg = "tracking", direction = "INGRESS", protocol = "6", peer = var.ssh_source_cidr, port = 22
      }
    } : {},
  )

  serving_rules = var.serving_enabled ? merge(
    {
      "Allow HTTPS to the model endpoint from the allowed CIDR" = {
        nsg = "serving", direction = "INGRESS", protocol = "6", peer = var.allowed_ingress_cidr, port = local.serving_port
      }
      "Allow the serving VM out over HTTPS for packages, images and the tracking server" = {
        nsg = "serving", direction = "EGRESS", protocol = "6", peer = "0.0.0.0/0", port = 443
      }
      "Allow the serving VM out over HTTP for OS package mirrors" = {
        nsg = "serving", direction = "EGRESS", protocol = "6", peer = "0.0.0.0/0", port = 80
      }
    },
    var.ssh_source_cidr != "" ? {
      "Allow SSH to the serving VM from the SSH CIDR" = {
        nsg = "serving", direction = "INGRESS", protocol = "6", peer = var.ssh_source_cidr, port = 22
      }
    } : {},
  ) : {}

  mysql_rules = {
    "Allow MySQL classic protocol from the tracking VM" = {
      nsg = "mysql", direction = "INGRESS", protocol = "6", peer = "nsg:tracking", port = 3306
    }
    "Allow MySQL X protocol from the tracking VM" = {
      nsg = "mysql", direction = "INGRESS", protocol = "6", peer = "nsg:tracking", port = 33060
    }
  }

  nsg_rules = merge(local.tracking_rules, local.serving_rules, local.mysql_rules)
}

resource "oci_core_network_security_group_security_rule" "rules" {
  for_each = local.nsg_rules

  network_security_group_id = local.nsg_ids[each.value.nsg]
  description               = each.key
  direction                 = each.value.direction
  protocol                  = each.value.protocol
  stateless                 = false

  source      = each.value.direction == "INGRESS" ? (substr(each.value.peer, 0, 4) == "nsg:" ? local.nsg_ids[substr(each.value.peer, 4, -1)] : each.value.peer) : null
  source_type = each.value.direction == "INGRESS" ? (substr(each.value.peer, 0, 4) == "nsg:" ? "NETWORK_SECURITY_GROUP" : "CIDR_BLOCK") : null

  destination      = each.value.direction == "EGRESS" ? (substr(each.value.peer, 0, 4) == "nsg:" ? local.nsg_ids[substr(each.value.peer, 4, -1)] : each.value.peer) : null
  destination_type = each.value.direction == "EGRESS" ? (substr(each.value.peer, 0, 4) == "nsg:" ? "NETWORK_SECURITY_GROUP" : "CIDR_BLOCK") : null

  tcp_options {
    destination_port_range {
      min = each.value.port
      max = each.value.port
    }
  }
}
