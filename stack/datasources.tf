# Read-only lookups. None of them returns an OCID that the stack hard-codes.

data "oci_identity_availability_domains" "this" {
  compartment_id = var.tenancy_ocid
}

data "oci_objectstorage_namespace" "this" {
  compartment_id = var.tenancy_ocid
}

# Newest Oracle Linux platform image compatible with each VM's shape (the API filters by shape,
# so an Arm A1 shape gets an aarch64 image and an x86 shape an x86_64 image).
data "oci_core_images" "oracle_linux" {
  for_each = local.vm_shapes

  compartment_id           = var.compartment_ocid
  operating_system         = "Oracle Linux"
  operating_system_version = var.oracle_linux_version
  shape                    = each.value
  state                    = "AVAILABLE"
  sort_by                  = "TIMECREATED"
  sort_order               = "DESC"
}

# A user-chosen image must be an Oracle Linux image compatible with the shape (checks.tf).
data "oci_core_images" "chosen" {
  for_each = local.chosen_image_ids

  compartment_id   = var.compartment_ocid
  operating_system = "Oracle Linux"
  shape            = local.vm_shapes[each.key]

  filter {
    name   = "id"
    values = [each.value]
  }
}

# Existing network (use_existing_vcn): the subnets' CIDRs and whether they allow public IPs.
data "oci_core_subnet" "existing_public" {
  count     = var.use_existing_vcn ? 1 : 0
  subnet_id = var.existing_public_subnet_id
}

data "oci_core_subnet" "existing_private" {
  count     = var.use_existing_vcn ? 1 : 0
  subnet_id = var.existing_private_subnet_id
}

# Standalone (non-HA) MySQL configuration of the chosen shape: sql_require_primary_key is off there.
data "oci_mysql_mysql_configurations" "standalone" {
  compartment_id = var.compartment_ocid
  shape_name     = var.mysql_shape
  type           = ["DEFAULT"]
  state          = "ACTIVE"

  filter {
    name   = "display_name"
    values = ["Standalone$"]
    regex  = true
  }
}

# Primary private IP of each VM (VM -> primary VNIC -> its private IPs), read once the VM exists,
# for the VM's reserved public IP.
data "oci_core_vnic_attachments" "vm" {
  for_each = local.vms

  compartment_id = var.compartment_ocid
  instance_id    = local.instances[each.key].id
}

data "oci_core_private_ips" "vm" {
  for_each = local.vms

  vnic_id = data.oci_core_vnic_attachments.vm[each.key].vnic_attachments[0].vnic_id
}

# This stack's DB system when it exists already. Stacks before 0.3.0 let MySQL choose the address, and
# ip_address forces a new DB system: an existing one keeps its address (and its data). The list gives
# the address only under `endpoints`; a deleted DB system stays listed for a while.
data "oci_mysql_mysql_db_systems" "this_stack" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.name_prefix}-mysql"
}
