# The tracking VM (nginx auth proxy + MLflow server) and the optional serving VM (nginx auth
# proxy + model server). Both boot from the newest Oracle Linux platform image for their shape and
# are configured by cloud-init only (cloudinit.tf): no SSH provisioner, nothing to run by hand.

resource "oci_core_instance" "tracking" {
  compartment_id      = var.compartment_ocid
  availability_domain = local.availability_domain
  display_name        = "${var.name_prefix}-tracking"
  shape               = var.tracking_shape
  freeform_tags       = merge(local.freeform_tags, { "role" = "tracking" })

  shape_config {
    ocpus         = local.vm_sizes.tracking.ocpus
    memory_in_gbs = local.vm_sizes.tracking.memory_in_gbs
  }

  source_details {
    source_type = "image"
    source_id   = local.image_ids.tracking
  }

  # The public address is the reserved IP in public_ips.tf, so the URL survives a VM replacement.
  create_vnic_details {
    subnet_id        = local.public_subnet_id
    assign_public_ip = false
    nsg_ids          = [oci_core_network_security_group.tracking.id]
    display_name     = "${var.name_prefix}-tracking-vnic"
  }

  is_pv_encryption_in_transit_enabled = true

  launch_options {
    is_pv_encryption_in_transit_enabled = true
  }

  instance_options {
    are_legacy_imds_endpoints_disabled = true
  }

  agent_config {
    is_monitoring_disabled = false
    is_management_disabled = false
  }

  metadata = merge(
    { user_data = local.tracking_user_data },
    var.ssh_public_key == "" ? {} : { ssh_authorized_keys = var.ssh_public_key },
  )

  # The DB system must accept connections before the first boot runs its SQL.
  depends_on = [oci_mysql_mysql_db_system.mlflow]
}

resource "oci_core_instance" "serving" {
  count = var.serving_enabled ? 1 : 0

  compartment_id      = var.compartment_ocid
  availability_domain = local.availability_domain
  display_name        = "${var.name_prefix}-serving"
  shape               = var.serving_shape
  freeform_tags       = merge(local.freeform_tags, { "role" = "serving" })

  shape_config {
    ocpus         = local.vm_sizes.serving.ocpus
    memory_in_gbs = local.vm_sizes.serving.memory_in_gbs
  }

  source_details {
    source_type = "image"
    source_id   = local.image_ids.serving
  }

  create_vnic_details {
    subnet_id        = local.public_subnet_id
    assign_public_ip = false
    nsg_ids          = [oci_core_network_security_group.serving[0].id]
    display_name     = "${var.name_prefix}-serving-vnic"
  }

  is_pv_encryption_in_transit_enabled = true

  launch_options {
    is_pv_encryption_in_transit_enabled = true
  }

  instance_options {
    are_legacy_imds_endpoints_disabled = true
  }

  agent_config {
    is_monitoring_disabled = false
    is_management_disabled = false
  }

  metadata = merge(
    { user_data = local.serving_user_data },
    var.ssh_public_key == "" ? {} : { ssh_authorized_keys = var.ssh_public_key },
  )
}
