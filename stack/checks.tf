# Rules that involve more than one input (a variable's validation sees only its own value before
# Terraform 1.9): each is a condition in a map keyed by the message a user sees, and the precondition
# of terraform_data.input_checks stops the plan with every rule that fails.

locals {
  # First address and size of each CIDR the stack creates, to compare ranges as numbers.
  new_network_cidrs = {
    vcn          = var.vcn_cidr
    public       = var.public_subnet_cidr
    private      = var.private_subnet_cidr
    notebook     = var.notebook_subnet_cidr
    oke_api      = var.oke_api_subnet_cidr
    oke_workers  = var.oke_workers_subnet_cidr
    oke_pods     = local.oke_pods_cidr
    oke_services = local.oke_services_cidr
  }
  cidr_ranges = {
    for name, cidr in local.new_network_cidrs : name => try({
      first = sum([for i, octet in split(".", split("/", cidr)[0]) : tonumber(octet) * pow(256, 3 - i)])
      size  = pow(2, 32 - tonumber(split("/", cidr)[1]))
    }, { first = 0, size = 0 })
  }
  subnets_overlap = (
    local.cidr_ranges.public.first < local.cidr_ranges.private.first + local.cidr_ranges.private.size &&
    local.cidr_ranges.private.first < local.cidr_ranges.public.first + local.cidr_ranges.public.size
  )
  notebook_subnet_overlaps = {
    for name in ["public", "private"] : name => (
      local.cidr_ranges.notebook.first < local.cidr_ranges[name].first + local.cidr_ranges[name].size &&
      local.cidr_ranges[name].first < local.cidr_ranges.notebook.first + local.cidr_ranges.notebook.size
    )
  }
  # With oke: its two subnets against each other and the stack's two; the cluster's pod and Service
  # ranges against the whole VCN (a pod address inside the VCN would shadow a host of the VCN).
  oke_range_overlaps = {
    for pair in [["oke_api", "public"], ["oke_api", "private"], ["oke_workers", "public"], ["oke_workers", "private"],
      ["oke_api", "oke_workers"], ["oke_pods", "vcn"], ["oke_services", "vcn"]] : join(" ", pair) => (
      local.cidr_ranges[pair[0]].first < local.cidr_ranges[pair[1]].first + local.cidr_ranges[pair[1]].size &&
      local.cidr_ranges[pair[1]].first < local.cidr_ranges[pair[0]].first + local.cidr_ranges[pair[0]].size
    )
  }
  subnet_outside_vcn = {
    for name in ["public", "private", "notebook", "oke_api", "oke_workers"] : name => (
      local.cidr_ranges[name].first < local.cidr_ranges.vcn.first ||
      local.cidr_ranges[name].first + local.cidr_ranges[name].size > local.cidr_ranges.vcn.first + local.cidr_ranges.vcn.size
    )
  }

  # OCI keeps a subnet's first two and last addresses for itself: an address chosen up front must be
  # one of the others of its subnet (which may be an existing one).
  chosen_addresses = {
    tracking = { ip = local.tracking_private_ip, cidr = local.public_subnet_cidr }
    mysql    = { ip = var.mysql_private_ip, cidr = local.private_subnet_cidr }
  }
  chosen_address_numbers = {
    for name, chosen in local.chosen_addresses : name => try({
      ip    = sum([for i, octet in split(".", chosen.ip) : tonumber(octet) * pow(256, 3 - i)])
      first = sum([for i, octet in split(".", split("/", chosen.cidr)[0]) : tonumber(octet) * pow(256, 3 - i)])
      size  = pow(2, 32 - tonumber(split("/", chosen.cidr)[1]))
    }, null)
  }
  address_usable = {
    for name, n in local.chosen_address_numbers : name => try(n.ip >= n.first + 2 && n.ip < n.first + n.size - 1, false)
  }

  input_errors = [for message, failed in {
    "public_subnet_cidr (${var.public_subnet_cidr}) and private_subnet_cidr (${var.private_subnet_cidr}) overlap: give the two subnets separate ranges, e.g. 10.0.1.0/24 and 10.0.2.0/24"                   = !var.use_existing_vcn && local.subnets_overlap
    "public_subnet_cidr (${var.public_subnet_cidr}) is not inside vcn_cidr (${var.vcn_cidr})"                                                                                                               = !var.use_existing_vcn && local.subnet_outside_vcn.public
    "private_subnet_cidr (${var.private_subnet_cidr}) is not inside vcn_cidr (${var.vcn_cidr})"                                                                                                             = !var.use_existing_vcn && local.subnet_outside_vcn.private
    "use_existing_vcn is true: set existing_vcn_id, existing_public_subnet_id and existing_private_subnet_id"                                                                                               = var.use_existing_vcn && (var.existing_vcn_id == "" || var.existing_public_subnet_id == "" || var.existing_private_subnet_id == "")
    "existing_public_subnet_id is a private subnet (it prohibits public IPs): the VMs need a public subnet"                                                                                                 = var.use_existing_vcn && try(data.oci_core_subnet.existing_public[0].prohibit_public_ip_on_vnic, false) == true
    "existing_public_subnet_id and existing_private_subnet_id belong to another VCN than existing_vcn_id"                                                                                                   = var.use_existing_vcn && try(data.oci_core_subnet.existing_public[0].vcn_id != var.existing_vcn_id || data.oci_core_subnet.existing_private[0].vcn_id != var.existing_vcn_id, false)
    "tracking_private_ip (${local.tracking_private_ip}) is not a usable address of the public subnet (${local.public_subnet_cidr}): give a free address inside it (OCI keeps the first two and the last)"   = var.tracking_private_ip != "" && !local.address_usable.tracking
    "mysql_private_ip (${var.mysql_private_ip}) is not a usable address of the private subnet (${local.private_subnet_cidr}): give a free address inside it (OCI keeps the first two and the last)"         = var.mysql_private_ip != "" && !local.address_usable.mysql
    "serving_enabled is true but no model is named: set serving_model_name (and serving_model_alias) or serving_model_uri, or disable serving"                                                              = local.serving_enabled && var.serving_model_name == "" && var.serving_model_uri == ""
    "s3_credentials_source is supply: set s3_access_key and s3_secret_key (a customer secret key of a user who may write the bucket)"                                                                       = var.artifact_store == "s3" && var.s3_credentials_source == "supply" && (var.s3_access_key == "" || nonsensitive(var.s3_secret_key == ""))
    "s3_credentials_source is create but current_user_ocid is empty: Resource Manager fills it; with the Terraform CLI set it to your user OCID, or supply keys"                                            = local.create_s3_key && var.current_user_ocid == ""
    "create_notebook_session needs the stack's own VCN (use_existing_vcn = false): the session gets a new private subnet with a NAT gateway"                                                                = var.create_notebook_session && var.use_existing_vcn
    "notebook_subnet_cidr (${var.notebook_subnet_cidr}) overlaps public_subnet_cidr or private_subnet_cidr: give the notebook subnet its own range, e.g. 10.0.3.0/24"                                       = var.create_notebook_session && (local.notebook_subnet_overlaps.public || local.notebook_subnet_overlaps.private)
    "notebook_subnet_cidr (${var.notebook_subnet_cidr}) is not inside vcn_cidr (${var.vcn_cidr})"                                                                                                           = var.create_notebook_session && local.subnet_outside_vcn.notebook
    "vault_ocid and vault_key_ocid go together: set both (an existing vault and an AES key of it) or leave both empty (the stack creates them)"                                                             = (var.vault_ocid == "") != (var.vault_key_ocid == "")
    "tracking_image_id (${var.tracking_image_id}) is not an Oracle Linux image compatible with tracking_shape ${var.tracking_shape}: Arm shapes (A1, A2) need an aarch64 image, the others an x86_64 image" = contains(keys(local.chosen_image_ids), "tracking") && length(try(data.oci_core_images.chosen["tracking"].images, [])) == 0
    "serving_image_id (${var.serving_image_id}) is not an Oracle Linux image compatible with serving_shape ${var.serving_shape}: Arm shapes (A1, A2) need an aarch64 image, the others an x86_64 image"     = contains(keys(local.chosen_image_ids), "serving") && length(try(data.oci_core_images.chosen["serving"].images, [])) == 0
    "no Oracle Linux ${var.oracle_linux_version} platform image is available for tracking_shape ${var.tracking_shape} in ${var.region}: choose another shape or Oracle Linux version"                       = !local.oke_enabled && !contains(keys(local.chosen_image_ids), "tracking") && try(local.image_ids.tracking, "") == ""
    "no Oracle Linux ${var.oracle_linux_version} platform image is available for serving_shape ${var.serving_shape} in ${var.region}: choose another shape or Oracle Linux version"                         = local.serving_enabled && !contains(keys(local.chosen_image_ids), "serving") && try(local.image_ids.serving, "") == ""
    # deployment_target = "oke" (oke.tf)
    "deployment_target is oke but container_registry is empty: a Kubernetes cluster pulls the tracking image and cannot build it; set container_registry to a registry that holds this release's images (e.g. ghcr.io/oracle-quickstart), or deploy on a VM (deployment_target = vm), which builds the image itself" = local.oke_enabled && var.container_registry == ""
    "deployment_target is oke but use_existing_vcn is true: the cluster needs the stack's own VCN (it adds subnets for the Kubernetes API endpoint and the worker nodes, with a NAT and a service gateway); set use_existing_vcn = false"                                                                            = local.oke_enabled && var.use_existing_vcn
    "create_notebook_session needs deployment_target = vm: the session is wired to the tracking VM's address, which an OKE deployment has not; turn the notebook session off"                                                                                                                                        = local.oke_enabled && var.create_notebook_session
    "oke_api_subnet_cidr (${var.oke_api_subnet_cidr}) and oke_workers_subnet_cidr (${var.oke_workers_subnet_cidr}) must lie inside vcn_cidr (${var.vcn_cidr})"                                                                                                                                                       = local.oke_enabled && (local.subnet_outside_vcn.oke_api || local.subnet_outside_vcn.oke_workers)
    "oke_api_subnet_cidr (${var.oke_api_subnet_cidr}), oke_workers_subnet_cidr (${var.oke_workers_subnet_cidr}), public_subnet_cidr and private_subnet_cidr overlap: give each subnet its own range, e.g. 10.0.4.0/28 and 10.0.5.0/24 for OKE"                                                                       = local.oke_enabled && anytrue([for pair in ["oke_api public", "oke_api private", "oke_workers public", "oke_workers private", "oke_api oke_workers"] : local.oke_range_overlaps[pair]])
    "vcn_cidr (${var.vcn_cidr}) overlaps the cluster's pod network (${local.oke_pods_cidr}) or Service range (${local.oke_services_cidr}): choose a VCN range outside both, e.g. 10.0.0.0/16"                                                                                                                        = local.oke_enabled && (local.oke_range_overlaps["oke_pods vcn"] || local.oke_range_overlaps["oke_services vcn"])
    "kubernetes_version ${var.kubernetes_version} is not a version OKE offers in ${var.region}: choose one of ${join(", ", try(data.oci_containerengine_cluster_option.oke[0].kubernetes_versions, []))}"                                                                                                            = local.oke_enabled && !contains(try(data.oci_containerengine_cluster_option.oke[0].kubernetes_versions, []), var.kubernetes_version)
    "no Oracle Linux OKE node image for Kubernetes ${var.kubernetes_version} and ${local.oke_node_arch} (oke_node_shape ${var.oke_node_shape}) is offered in ${var.region}: choose another kubernetes_version, or set oke_node_image_id"                                                                             = local.oke_enabled && local.oke_node_image == ""
    # mlflow_users = "sso" (sso.tf)
    "mlflow_users is sso: set sso_domain_url (the identity domain's Domain URL), sso_admin_group and sso_user_group (two groups of that domain)"                   = local.sso_enabled && (var.sso_domain_url == "" || var.sso_admin_group == "" || var.sso_user_group == "")
    "sso_admin_group and sso_user_group are both ${var.sso_admin_group}: name two different groups, one for MLflow admins and one for its users"                   = local.sso_enabled && var.sso_admin_group != "" && var.sso_admin_group == var.sso_user_group
    "sso_admin_group ${var.sso_admin_group} is not a group of the identity domain ${local.sso_domain_url}: give a group name as the domain's Groups page shows it" = local.sso_enabled && var.sso_admin_group != "" && length(try(local.sso_group_ids.admin, [])) != 1
    "sso_user_group ${var.sso_user_group} is not a group of the identity domain ${local.sso_domain_url}: give a group name as the domain's Groups page shows it"   = local.sso_enabled && var.sso_user_group != "" && length(try(local.sso_group_ids.user, [])) != 1
  } : message if failed]
}

resource "terraform_data" "input_checks" {
  lifecycle {
    precondition {
      condition     = length(local.input_errors) == 0
      error_message = "Invalid input: ${join(" | ", local.input_errors)}"
    }
  }
}
