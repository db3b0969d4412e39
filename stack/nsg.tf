# Network security groups, one per role (tracking, serving when enabled, mysql; with
# deployment_target = "oke" the API endpoint, the worker nodes and the load balancer instead of the
# VMs). The rules are data, keyed by a sentence that is also the rule's description in the console;
# one local normalises them and ONE resource turns them into NSG rules.
#   tracking: HTTPS 443 from allowed_ingress_cidr, the serving VM and the notebook subnet; SSH only if asked.
#   serving:  HTTPS 1234 from allowed_ingress_cidr and the notebook subnet; SSH only if asked.
#   mysql:    3306/33060 from the tracking NSG only (with oke: 3306 from the worker nodes only).
#   both VMs: ICMP "fragmentation needed" (type 3 code 4) from anywhere, so path MTU discovery works
#             for clients behind VPNs and tunnels (without it, large answers stall).
# Egress is as narrow as the boot needs: HTTPS/HTTP out (OS packages, container images, PyPI,
# Object Storage), MySQL to the DB NSG, and the serving VM's calls to the tracking server.
#
# OKE (oke.tf): the rules OKE documents for a flannel-overlay cluster with a public API endpoint,
# private worker nodes and a public load balancer ("Network Resource Configuration for Cluster
# Creation and Deployment": security rules of the Kubernetes API endpoint, worker node and load
# balancer subnets), written between NSGs instead of subnet CIDRs, and narrower where the
# documentation leaves a choice:
#   oke-api:     6443 from allowed_ingress_cidr (kubectl, orm-pack oke deploy); 6443, 12250 and ICMP
#                3/4 from the workers; out: TCP to the workers, HTTPS to OCI services (OKE itself).
#   oke-workers: TCP and UDP from each other (the documented "all protocols": pods across nodes over
#                flannel's VXLAN, kubelet, DNS); TCP from the API endpoint; node ports 30000-32767
#                and kube-proxy's health port 10256 from the load balancer; out: each other, the API
#                endpoint (6443, 12250), OCI services through the service gateway (Vault, Object
#                Storage, OKE), HTTPS to the internet through the NAT gateway (container images; the
#                documented "all protocols" narrowed to 443) and MySQL 3306.
#   oke-lb:      443 from allowed_ingress_cidr only; out: the workers' node ports and 10256.
# The load balancer is Kubernetes' (the Service's annotations attach oke-lb and set the cloud
# controller's security-list management to None, so nothing but these rules opens the subnets).

resource "oci_core_network_security_group" "role" {
  for_each = toset(concat(keys(local.vm_shapes), local.oke_enabled ? ["oke-api", "oke-workers", "oke-lb"] : [], ["mysql"]))

  compartment_id = var.compartment_ocid
  vcn_id         = local.vcn_id
  display_name   = "${var.name_prefix}-${each.key}-nsg"
  freeform_tags  = local.freeform_tags
}

locals {
  nsg_ids = { for role, nsg in oci_core_network_security_group.role : role => nsg.id }

  # nsg: the group the rule belongs to; peer: a CIDR, "nsg:<role>" for another group or "osn" for
  # all of the region's services in the Oracle Services Network; port: a TCP port, ports = [min, max]
  # a TCP range, protocol = "tcp" | "udp" | "all" without a port: every port; icmp = [type, code] for
  # an ICMP rule.
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
      local.serving_enabled ? {
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
    mysql = local.oke_enabled ? {
      "Allow MySQL classic protocol from the worker nodes" = { direction = "INGRESS", peer = "nsg:oke-workers", port = 3306 }
      } : {
      "Allow MySQL classic protocol from the tracking VM" = { direction = "INGRESS", peer = "nsg:tracking", port = 3306 }
      "Allow MySQL X protocol from the tracking VM"       = { direction = "INGRESS", peer = "nsg:tracking", port = 33060 }
    }
    oke-api = {
      "Allow the Kubernetes API from the allowed CIDR"                = { direction = "INGRESS", peer = var.allowed_ingress_cidr, port = 6443 }
      "Allow the Kubernetes API from the worker nodes"                = { direction = "INGRESS", peer = "nsg:oke-workers", port = 6443 }
      "Allow the worker nodes to the control plane on 12250"          = { direction = "INGRESS", peer = "nsg:oke-workers", port = 12250 }
      "Allow path MTU discovery to the API endpoint from the workers" = { direction = "INGRESS", peer = "nsg:oke-workers", icmp = [3, 4] }
      "Allow the control plane to the worker nodes"                   = { direction = "EGRESS", peer = "nsg:oke-workers", protocol = "tcp" }
      "Allow path MTU discovery from the API endpoint to the workers" = { direction = "EGRESS", peer = "nsg:oke-workers", icmp = [3, 4] }
      "Allow the control plane to OKE over HTTPS (OCI services)"      = { direction = "EGRESS", peer = "osn", port = 443 }
    }
    oke-workers = {
      "Allow TCP between the worker nodes (pods, kubelet)"                  = { direction = "INGRESS", peer = "nsg:oke-workers", protocol = "tcp" }
      "Allow UDP between the worker nodes (flannel's VXLAN overlay, DNS)"   = { direction = "INGRESS", peer = "nsg:oke-workers", protocol = "udp" }
      "Allow the control plane to the worker nodes over TCP"                = { direction = "INGRESS", peer = "nsg:oke-api", protocol = "tcp" }
      "Allow path MTU discovery to the workers from the API endpoint"       = { direction = "INGRESS", peer = "nsg:oke-api", icmp = [3, 4] }
      "Allow the load balancer to the node ports"                           = { direction = "INGRESS", peer = "nsg:oke-lb", ports = [30000, 32767] }
      "Allow the load balancer's health checks to kube-proxy"               = { direction = "INGRESS", peer = "nsg:oke-lb", port = 10256 }
      "Allow the worker nodes out to each other"                            = { direction = "EGRESS", peer = "nsg:oke-workers", protocol = "all" }
      "Allow the worker nodes to the Kubernetes API"                        = { direction = "EGRESS", peer = "nsg:oke-api", port = 6443 }
      "Allow the worker nodes to the control plane on 12250 (out)"          = { direction = "EGRESS", peer = "nsg:oke-api", port = 12250 }
      "Allow the worker nodes to OCI services (OKE, Vault, Object Storage)" = { direction = "EGRESS", peer = "osn", protocol = "tcp" }
      "Allow the worker nodes out over HTTPS for container images"          = { direction = "EGRESS", peer = "0.0.0.0/0", port = 443 }
      "Allow path MTU discovery from the worker nodes"                      = { direction = "EGRESS", peer = "0.0.0.0/0", icmp = [3, 4] }
      "Allow MySQL classic protocol from the worker nodes to the DB system" = { direction = "EGRESS", peer = "nsg:mysql", port = 3306 }
    }
    oke-lb = {
      "Allow HTTPS to MLflow's load balancer from the allowed CIDR" = { direction = "INGRESS", peer = var.allowed_ingress_cidr, port = local.tracking_port }
      "Allow the load balancer out to the node ports"               = { direction = "EGRESS", peer = "nsg:oke-workers", ports = [30000, 32767] }
      "Allow the load balancer's health checks out to kube-proxy"   = { direction = "EGRESS", peer = "nsg:oke-workers", port = 10256 }
    }
  }

  # Every rule of every group that exists, with its peer resolved and its protocol spelled out.
  protocol_numbers = { tcp = "6", udp = "17", all = "all" }

  nsg_rules = merge([
    for role, rules in local.vm_rules : {
      for description, rule in rules : description => {
        nsg_id    = local.nsg_ids[role]
        direction = rule.direction
        protocol  = can(rule.icmp) ? "1" : local.protocol_numbers[try(rule.protocol, "tcp")]
        peer = (substr(rule.peer, 0, 4) == "nsg:" ? local.nsg_ids[substr(rule.peer, 4, -1)]
        : rule.peer == "osn" ? local.oracle_services_cidr : rule.peer)
        peer_type = (substr(rule.peer, 0, 4) == "nsg:" ? "NETWORK_SECURITY_GROUP"
        : rule.peer == "osn" ? "SERVICE_CIDR_BLOCK" : "CIDR_BLOCK")
        ports = can(rule.ports) ? rule.ports : can(rule.port) ? [rule.port, rule.port] : null
        icmp  = try(rule.icmp, null)
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
    for_each = each.value.ports == null ? [] : [each.value.ports]
    content {
      destination_port_range {
        min = tcp_options.value[0]
        max = tcp_options.value[1]
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
