# Network security groups, one per role (tracking, serving when enabled, mysql). The rules are data,
# keyed by a sentence that is also the rule's description in the console; one local normalises them
# and ONE resource turns them into NSG rules.
#   tracking: HTTPS 443 from allowed_ingress_cidr, the serving VM and the notebook subnet; SSH only if asked.
#   serving:  HTTPS 1234 from allowed_ingress_cidr and the notebook subnet; SSH only if asked.
#   mysql:    3306/33060 from the tracking NSG only.
#   both VMs: ICMP "fragmentation needed" (type 3 code 4) from anywhere, so path MTU discovery works
#             for clients behind VPNs and tunnels (without it, large answers stall).
# Egress is as narrow as the boot needs: HTTPS/HTTP out (OS packages, container images, PyPI,
# Object Storage), MySQL to the DB NSG, and the serving VM's calls to the tracking server.

resource "oci_core_network_security_group" "role" {
  for_each = toset(concat(keys(local.vm_shapes), ["mysql"]))

  compartment_id = var.compartment_ocid
  vcn_id         = local.vcn_id
  display_name   = "${var.name_prefix}-${each.key}-nsg"
  freeform_tags  = local.freeform_tags
}

locals {
  nsg_ids = { for role, nsg in oci_core_network_security_group.role : role => nsg.id }

  # nsg: the group the rule belongs to; peer: a CIDR, or "nsg:<role>" for another group;
  # port: a TCP port, or icmp = [type, code] for an ICMP rule.
  vm_rules = {
    tracking = merge(
      {
        "Allow HTTPS to MLflow from the allowed CIDR"             = { direction = "INGRESS", peer = var.allowed_ingress_cidr, port = local.tracking_port }
        "Allow HTTPS out for packages, images and Object Storage" = { direction = "EGRESS", peer = "0.0.0.0/0", port = 443 }
        "Allow HTTP out for OS package mirrors"                   = { direction = "EGRESS", peer = "0.0.0.0/0", port = 80 }
        "Allow MySQL classic protocol to the DB system"           = { direction = "EGRESS", peer = "nsg:mysql", port = 3306 }
        "Allow MySQL X protocol to the DB system"                 = { direction = "EGRESS", peer = "nsg:mysql", port = 33060 }
        "Allow path MTU discovery to the tracking VM"             = { direction = "INGRESS", peer = "0.0.0.0/0", icmp = [3, 4] }
      },
      var.serving_enabled ? {
        "Allow HTTPS to MLflow from the serving VM" = { direction = "INGRESS", peer = "nsg:serving", port = local.tracking_port }
      } : {},
      var.create_notebook_session ? {
        "Allow HTTPS to MLflow from the notebook session's subnet" = { direction = "INGRESS", peer = var.notebook_subnet_cidr, port = local.tracking_port }
      } : {},
      var.ssh_source_cidr != "" ? {
        "Allow SSH to the tracking VM from the SSH CIDR" = { direction = "INGRESS", peer = var.ssh_source_cidr, port = 22 }
      } : {},
    )
    serving = merge(
      {
        "Allow HTTPS to the model endpoint from the allowed CIDR"                          = { direction = "INGRESS", peer = var.allowed_ingress_cidr, port = local.serving_port }
        "Allow the serving VM out over HTTPS for packages, images and the tracking server" = { direction = "EGRESS", peer = "0.0.0.0/0", port = 443 }
        "Allow the serving VM out over HTTP for OS package mirrors"                        = { direction = "EGRESS", peer = "0.0.0.0/0", port = 80 }
        "Allow path MTU discovery to the serving VM"                                       = { direction = "INGRESS", peer = "0.0.0.0/0", icmp = [3, 4] }
      },
      var.create_notebook_session ? {
        "Allow HTTPS to the model endpoint from the notebook session's subnet" = { direction = "INGRESS", peer = var.notebook_subnet_cidr, port = local.serving_port }
      } : {},
      var.ssh_source_cidr != "" ? {
        "Allow SSH to the serving VM from the SSH CIDR" = { direction = "INGRESS", peer = var.ssh_source_cidr, port = 22 }
      } : {},
    )
    mysql = {
      "Allow MySQL classic protocol from the tracking VM" = { direction = "INGRESS", peer = "nsg:tracking", port = 3306 }
      "Allow MySQL X protocol from the tracking VM"       = { direction = "INGRESS", peer = "nsg:tracking", port = 33060 }
    }
  }

  # Every rule of every group that exists, with its peer resolved and its protocol spelled out.
  nsg_rules = merge([
    for role, rules in local.vm_rules : {
      for description, rule in rules : description => {
        nsg_id    = local.nsg_ids[role]
        direction = rule.direction
        protocol  = can(rule.icmp) ? "1" : "6"
        peer      = substr(rule.peer, 0, 4) == "nsg:" ? local.nsg_ids[substr(rule.peer, 4, -1)] : rule.peer
        peer_type = substr(rule.peer, 0, 4) == "nsg:" ? "NETWORK_SECURITY_GROUP" : "CIDR_BLOCK"
        port      = try(rule.port, null)
        icmp      = try(rule.icmp, null)
      }
    } if contains(keys(local.nsg_ids), role)
  ]...)
}

resource "oci_core_network_security_group_security_rule" "rules" {
  for_each = local.nsg_rules

  network_security_group_id = each.value.nsg_id
  description               = each.key
  direction                 = each.value.direction
  protocol                  = each.value.protocol
  stateless                 = false

  source           = each.value.direction == "INGRESS" ? each.value.peer : null
  source_type      = each.value.direction == "INGRESS" ? each.value.peer_type : null
  destination      = each.value.direction == "EGRESS" ? each.value.peer : null
  destination_type = each.value.direction == "EGRESS" ? each.value.peer_type : null

  dynamic "tcp_options" {
    for_each = each.value.port == null ? [] : [each.value.port]
    content {
      destination_port_range {
        min = tcp_options.value
        max = tcp_options.value
      }
    }
  }

  dynamic "icmp_options" {
    for_each = each.value.icmp == null ? [] : [each.value.icmp]
    content {
      type = icmp_options.value[0]
      code = icmp_options.value[1]
    }
  }
}
