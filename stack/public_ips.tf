# Reserved public IPs, one per VM role, assigned to the VM's primary private IP once it exists.
#
# Why reserved and not the VM's ephemeral IP: a reserved IP outlives the VM, so the MLflow URL in
# notebooks, the serving endpoint in client apps and the form's button stay the same when a VM is
# replaced (new shape, a chosen image, changed settings); Terraform re-points the IP to the new VM.
# The address cannot be given to the VM's own cloud-init: the assignment needs the VM's private IP,
# so the IP's address is known only after the VM was created (a cycle). The VMs therefore never
# depend on their public address (see cloudinit.tf for the Host check and the TLS certificate).

resource "oci_core_public_ip" "vm" {
  for_each = local.vms

  compartment_id = var.compartment_ocid
  lifetime       = "RESERVED"
  display_name   = "${var.name_prefix}-${each.key}-ip"
  private_ip_id  = local.primary_private_ip_ids[each.key]
  freeform_tags  = local.freeform_tags
}

locals {
  primary_private_ip_ids = {
    for role, ips in data.oci_core_private_ips.vm : role => [for ip in ips.private_ips : ip.id if ip.is_primary][0]
  }
}
