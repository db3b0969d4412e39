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

# deployment_target = "oke": the address of the load balancer Kubernetes creates for MLflow (the Service
# names it in spec.loadBalancerIP; orm-pack oke deploy fills it in). Reserved here, so the MLflow URL is
# known from the apply on (outputs, the single sign-on redirect) and stays the same across oke delete and
# deploy: a load balancer leaves a reserved IP unassigned when it goes, and never deletes it.
resource "oci_core_public_ip" "oke_lb" {
  count = local.oke_enabled ? 1 : 0

  compartment_id = var.compartment_ocid
  lifetime       = "RESERVED"
  display_name   = "${var.name_prefix}-oke-lb-ip"
  freeform_tags  = local.freeform_tags

  lifecycle {
    # Kubernetes' cloud controller assigns the address to the load balancer's private IP; Terraform
    # must not take it back on the next apply.
    ignore_changes = [private_ip_id]
  }
}
