# New VCN (unless use_existing_vcn): a public subnet for the VMs behind an internet gateway and a
# private subnet for the MySQL DB system with no route out at all (the DB needs none).
# Traffic rules are in nsg.tf; the subnets' own security list allows only what every host needs.

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

resource "oci_core_route_table" "public" {
  count = var.use_existing_vcn ? 0 : 1

  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.mlflow[0].id
  display_name   = "${var.name_prefix}-public-rt"
  freeform_tags  = local.freeform_tags

  route_rules {
    description       = "Internet access for the VMs (packages, container images, Object Storage)"
    destination       = "0.0.0.0/0"
    destination_type  = "CIDR_BLOCK"
    network_entity_id = oci_core_internet_gateway.mlflow[0].id
  }
}

resource "oci_core_route_table" "private" {
  count = var.use_existing_vcn ? 0 : 1

  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.mlflow[0].id
  display_name   = "${var.name_prefix}-private-rt"
  freeform_tags  = local.freeform_tags
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

resource "oci_core_subnet" "public" {
  count = var.use_existing_vcn ? 0 : 1

  compartment_id             = var.compartment_ocid
  vcn_id                     = oci_core_vcn.mlflow[0].id
  cidr_block                 = var.public_subnet_cidr
  display_name               = "${var.name_prefix}-public"
  dns_label                  = "public"
  prohibit_public_ip_on_vnic = false
  route_table_id             = oci_core_route_table.public[0].id
  security_list_ids          = [oci_core_security_list.baseline[0].id]
  freeform_tags              = local.freeform_tags
}

resource "oci_core_subnet" "private" {
  count = var.use_existing_vcn ? 0 : 1

  compartment_id             = var.compartment_ocid
  vcn_id                     = oci_core_vcn.mlflow[0].id
  cidr_block                 = var.private_subnet_cidr
  display_name               = "${var.name_prefix}-private"
  dns_label                  = "private"
  prohibit_public_ip_on_vnic = true
  prohibit_internet_ingress  = true
  route_table_id             = oci_core_route_table.private[0].id
  security_list_ids          = [oci_core_security_list.baseline[0].id]
  freeform_tags              = local.freeform_tags
}
