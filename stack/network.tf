# New VCN (unless use_existing_vcn): a public subnet for the VMs behind an internet gateway and a
# private subnet for the MySQL DB system with no route out at all (the DB needs none). The notebook
# session (notebook.tf) and OKE (oke.tf) add subnets of their own, with outbound-only NAT gateways.
# Traffic rules are in nsg.tf; the subnets' own security list allows only what every host needs.
#
# Every subnet, route table and NAT gateway is one resource with a key per role, present when its
# feature is on; the moved blocks at the end carry states made before that over without a replacement.

locals {
  nat_gateway_roles = toset(concat(local.notebook_enabled ? ["notebook"] : [], local.oke_enabled ? ["oke"] : []))

  # role -> the routes of its table, in order
  route_tables = merge(
    var.use_existing_vcn ? {} : {
      public = [{
        description = "Internet access for the VMs (packages, container images, Object Storage)"
        destination = "0.0.0.0/0", destination_type = "CIDR_BLOCK", gateway = oci_core_internet_gateway.mlflow[0].id
      }]
      private = []
    },
    local.notebook_enabled ? {
      notebook = [{
        description = "Outbound only, for the notebook session's packages and Git clone"
        destination = "0.0.0.0/0", destination_type = "CIDR_BLOCK", gateway = oci_core_nat_gateway.mlflow["notebook"].id
      }]
    } : {},
    local.oke_enabled ? {
      oke_workers = [
        {
          description = "OCI services (OKE, Vault, Object Storage) through the service gateway"
          destination = local.oracle_services_cidr, destination_type = "SERVICE_CIDR_BLOCK", gateway = oci_core_service_gateway.oke[0].id
        },
        {
          description = "Outbound only, for container images"
          destination = "0.0.0.0/0", destination_type = "CIDR_BLOCK", gateway = oci_core_nat_gateway.mlflow["oke"].id
        },
      ]
    } : {},
  )

  # role -> its subnet; `public` subnets let VNICs have public IPs, the others refuse internet ingress
  subnets = merge(
    var.use_existing_vcn ? {} : {
      public  = { cidr = var.public_subnet_cidr, dns_label = "public", public = true, route_table = "public", security_list = "baseline" }
      private = { cidr = var.private_subnet_cidr, dns_label = "private", public = false, route_table = "private", security_list = "baseline" }
    },
    local.notebook_enabled ? {
      notebook = { cidr = var.notebook_subnet_cidr, dns_label = "notebook", public = false, route_table = "notebook", security_list = "notebook" }
    } : {},
    local.oke_enabled ? {
      oke_api     = { cidr = var.oke_api_subnet_cidr, dns_label = "okeapi", public = true, route_table = "public", security_list = "baseline" }
      oke_workers = { cidr = var.oke_workers_subnet_cidr, dns_label = "okeworkers", public = false, route_table = "oke_workers", security_list = "baseline" }
    } : {},
  )
  security_list_ids = merge(
    var.use_existing_vcn ? {} : { baseline = oci_core_security_list.baseline[0].id },
    local.notebook_enabled ? { notebook = oci_core_security_list.notebook[0].id } : {},
  )
}


resource "oci_core_vcn" "mlflow" {
  count = var.use_existing_vcn ? 0 : 1

  compartment_id = var.compartment_ocid
  cidr_blocks    = [var.vcn_cidr]
  display_name   = "${var.name_prefix}-vcn"
  dns_label      = substr(replace(var.name_prefix, "-", ""), 0, 15)
  freeform_tags  = local.freeform_tags
}

resource "oci_core_internet_gateway" "mlflow" {
  count = var.use_existing_vcn ? 0 : 1

  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.mlflow[0].id
  display_name   = "${var.name_prefix}-igw"
  enabled        = true
  freeform_tags  = local.freeform_tags
}

resource "oci_core_nat_gateway" "mlflow" {
  for_each = local.nat_gateway_roles

  compartment_id = var.compartment_ocid
  vcn_id         = local.vcn_id
  display_name   = "${var.name_prefix}-${each.key}-nat"
  freeform_tags  = local.freeform_tags
}

resource "oci_core_route_table" "mlflow" {
  for_each = local.route_tables

  compartment_id = var.compartment_ocid
  vcn_id         = local.vcn_id
  display_name   = "${var.name_prefix}-${replace(each.key, "_", "-")}-rt"
  freeform_tags  = local.freeform_tags

  dynamic "route_rules" {
    for_each = each.value
    content {
      description       = route_rules.value.description
      destination       = route_rules.value.destination
      destination_type  = route_rules.value.destination_type
      network_entity_id = route_rules.value.gateway
    }
  }
}

# Replaces the VCN's default security list (which opens SSH to the world) on both subnets.
# It allows only ICMP "fragmentation needed" (path MTU discovery) in; NSGs carry everything else.
resource "oci_core_security_list" "baseline" {
  count = var.use_existing_vcn ? 0 : 1

  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.mlflow[0].id
  display_name   = "${var.name_prefix}-baseline-sl"
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
}

resource "oci_core_subnet" "mlflow" {
  for_each = local.subnets

  compartment_id             = var.compartment_ocid
  vcn_id                     = local.vcn_id
  cidr_block                 = each.value.cidr
  display_name               = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  dns_label                  = each.value.dns_label
  prohibit_public_ip_on_vnic = !each.value.public
  prohibit_internet_ingress  = each.value.public ? null : true
  route_table_id             = oci_core_route_table.mlflow[each.value.route_table].id
  security_list_ids          = [local.security_list_ids[each.value.security_list]]
  freeform_tags              = local.freeform_tags
}

# Addresses before the role maps: a state made by an earlier release moves over in place.

moved {
  from = oci_core_subnet.public[0]
  to   = oci_core_subnet.mlflow["public"]
}

moved {
  from = oci_core_subnet.private[0]
  to   = oci_core_subnet.mlflow["private"]
}

moved {
  from = oci_core_subnet.notebook[0]
  to   = oci_core_subnet.mlflow["notebook"]
}

moved {
  from = oci_core_subnet.oke_api[0]
  to   = oci_core_subnet.mlflow["oke_api"]
}

moved {
  from = oci_core_subnet.oke_workers[0]
  to   = oci_core_subnet.mlflow["oke_workers"]
}

moved {
  from = oci_core_route_table.public[0]
  to   = oci_core_route_table.mlflow["public"]
}

moved {
  from = oci_core_route_table.private[0]
  to   = oci_core_route_table.mlflow["private"]
}

moved {
  from = oci_core_route_table.notebook[0]
  to   = oci_core_route_table.mlflow["notebook"]
}

moved {
  from = oci_core_route_table.oke_workers[0]
  to   = oci_core_route_table.mlflow["oke_workers"]
}

moved {
  from = oci_core_nat_gateway.notebook[0]
  to   = oci_core_nat_gateway.mlflow["notebook"]
}

moved {
  from = oci_core_nat_gateway.oke[0]
  to   = oci_core_nat_gateway.mlflow["oke"]
}
