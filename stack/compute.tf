# The VMs, one resource keyed by role: tracking (nginx auth proxy + MLflow server) and, when
# enabled, serving (nginx auth proxy + model server). Configured by cloud-init only (cloudinit.tf):
# no SSH provisioner, nothing to run by hand.

locals {
  vms = {
    for role, shape in local.vm_shapes : role => {
      shape     = shape
      ocpus     = local.vm_sizes[role].ocpus
      memory    = local.vm_sizes[role].memory_in_gbs
      image_id  = local.image_ids[role]
      user_data = local.user_data[role]
      # The serving VM reaches the tracking server at this address, known before either VM exists.
      private_ip = role == "tracking" ? local.tracking_private_ip : null
    }
  }

  # A VM keeps the image it was created from: Oracle publishes a newer platform image about monthly,
  # and a changed source_id would re-image the VM on the next apply, whatever that apply is for.
  # Choosing an image OCID in the form is the deliberate way on: it gives the VM another key, so it
  # is replaced by one booted from that image (the reserved public IP moves to it).
  vm_keys = {
    for role in keys(local.vms) : role => (
      contains(keys(local.chosen_image_ids), role) ? "${role}-${substr(sha256(local.chosen_image_ids[role]), 0, 8)}" : role
    )
  }
  instances = { for role, key in local.vm_keys : role => oci_core_instance.vm[key] }
}

resource "oci_core_instance" "vm" {
  for_each = { for role, vm in local.vms : local.vm_keys[role] => merge(vm, { role = role }) }

  compartment_id      = var.compartment_ocid
  availability_domain = local.availability_domain
  display_name        = "${var.name_prefix}-${each.value.role}"
  shape               = each.value.shape
  freeform_tags       = merge(local.freeform_tags, { "role" = each.value.role })

  shape_config {
    ocpus         = each.value.ocpus
    memory_in_gbs = each.value.memory
  }

  source_details {
    source_type = "image"
    source_id   = each.value.image_id
  }

  # The public address is the reserved IP in public_ips.tf, so the URL survives a VM replacement.
  create_vnic_details {
    subnet_id        = local.public_subnet_id
    assign_public_ip = false
    private_ip       = each.value.private_ip
    nsg_ids          = [oci_core_network_security_group.role[each.value.role].id]
    display_name     = "${var.name_prefix}-${each.value.role}-vnic"
  }

  is_pv_encryption_in_transit_enabled = true

  instance_options {
    are_legacy_imds_endpoints_disabled = true
  }

  agent_config {
    is_monitoring_disabled = false
    is_management_disabled = false

    # The tracking VM runs the commands orm-pack upgrade sends it (OCI "Running Commands on an Instance":
    # the Oracle Cloud Agent plugin "Compute Instance Run Command", here enabled explicitly; its statement
    # is in iam.tf and what it may run as root in the sudoers entry of cloudinit.tf).
    dynamic "plugins_config" {
      for_each = each.value.role == "tracking" ? ["Compute Instance Run Command"] : []
      content {
        name          = plugins_config.value
        desired_state = "ENABLED"
      }
    }
  }

  metadata = merge(
    { user_data = each.value.user_data },
    var.ssh_public_key == "" ? {} : { ssh_authorized_keys = var.ssh_public_key },
  )

  lifecycle {
    ignore_changes = [source_details[0].source_id]
  }
}
