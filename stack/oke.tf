# The tracking server on OKE, Oracle's managed Kubernetes (deployment_target = "oke"). Terraform builds
# what the cluster needs from OCI; the Kubernetes objects (oke/) are applied by `orm-pack oke deploy`,
# which reads the output oke_deploy_settings: the same MySQL DB system, bucket, Vault secrets and
# policies as the VM path, with the tracking VM's settings handed to the pods instead of cloud-init.
#
#   * A BASIC_CLUSTER: OKE bills no control plane for basic clusters, only the worker nodes (their
#     shape) and what Kubernetes creates (the Service's load balancer).
#   * Its Kubernetes API endpoint has a public IP in a public subnet of its own, behind the oke-api NSG:
#     reachable from allowed_ingress_cidr (kubectl, orm-pack oke deploy) and the worker nodes only.
#   * Worker nodes in a private subnet of their own (the oke-workers NSG) that reaches the internet
#     through a NAT gateway (container images) and OCI's services through a service gateway (Vault,
#     Object Storage and OKE itself), as OKE documents for private workers. Pods use the flannel
#     overlay (10.244.0.0/16), so they take no addresses from the subnets.
#   * The load balancer goes into the stack's public subnet behind the oke-lb NSG (443 from
#     allowed_ingress_cidr) at a reserved public IP (public_ips.tf); Kubernetes creates it, the outputs
#     name the subnet, the NSG and the address.
#
# The pods reach Vault and the bucket as the node they run on (instance principal), exactly like the
# tracking VM: iam.tf puts the nodes in a dynamic group through a defined tag (see there why).

locals {
  oke_pods_cidr     = "10.244.0.0/16" # flannel's pod network (OKE's default)
  oke_services_cidr = "10.96.0.0/16"  # the cluster's Service addresses (OKE's default)
  oke_namespace     = "mlflow"        # the Kubernetes namespace of oke/ (orm-pack checks it)

  # The nodes are spread over the region's availability domains (placement_configs) unless one is chosen.
  oke_availability_domains = var.availability_domain != "" ? [var.availability_domain] : [
    for ad in data.oci_identity_availability_domains.this.availability_domains : ad.name
  ]

  # "All <region> Services In Oracle Services Network": the service gateway's and the NSGs' target.
  oracle_services_id   = try(data.oci_core_services.oke[0].services[0].id, "")
  oracle_services_cidr = try(data.oci_core_services.oke[0].services[0].cidr_block, "")

  # The node image: OKE lists its images per Kubernetes version (node pool options), named
  #   Oracle-Linux-<os version>[-aarch64]-<YYYY.MM.DD>-<n>-OKE-<kubernetes version>-<build>
  # (GPU images carry "-Gen2-GPU" and do not match). The newest image built for kubernetes_version and
  # the shape's architecture is taken, by its date and build number.
  oke_node_arch = length(regexall("^VM\\.Standard\\.A[0-9]+\\.", var.oke_node_shape)) > 0 ? "aarch64" : "x86_64"
  oke_image_pattern = format("^Oracle-Linux-[0-9]+\\.[0-9]+-%s([0-9]{4}\\.[0-9]{2}\\.[0-9]{2}-[0-9]+)-OKE-%s-([0-9]+)$",
  local.oke_node_arch == "aarch64" ? "aarch64-" : "", replace(trimprefix(var.kubernetes_version, "v"), ".", "\\."))
  oke_image_candidates = [
    for source in try(data.oci_containerengine_node_pool_option.oke[0].sources, []) : format("%s %010d %s",
      regex(local.oke_image_pattern, source.source_name)[0], tonumber(regex(local.oke_image_pattern, source.source_name)[1]),
    source.image_id)
    if upper(source.source_type) == "IMAGE" && can(regex(local.oke_image_pattern, source.source_name))
  ]
  oke_newest_image = try(split(" ", reverse(sort(local.oke_image_candidates))[0])[2], "")
  oke_node_image   = var.oke_node_image_id != "" ? var.oke_node_image_id : local.oke_newest_image

  # The node pool keeps the image it was created from (as the VMs do, compute.tf): OKE publishes newer
  # node images about monthly and a changed image would be drift on every plan. The pool is keyed by
  # what deliberately changes its image: a chosen oke_node_image_id, or a new kubernetes_version. That is
  # OKE's out-of-place node upgrade (a new pool with the new version's image; the old one goes): cycling
  # the nodes of an existing pool onto a new image or version is a feature of enhanced clusters only.
  oke_node_pool_key = join("-", compact([
    var.kubernetes_version,
    var.oke_node_image_id == "" ? "" : substr(sha256(var.oke_node_image_id), 0, 8),
  ]))

  # The tag that puts the nodes into their dynamic group (iam.tf): namespace.key = value.
  oke_node_tag = local.oke_enabled ? {
    namespace = oci_identity_tag_namespace.oke[0].name
    key       = oci_identity_tag.oke_node_pool[0].name
    value     = "${var.name_prefix}-workers"
  } : null

  cluster_id = local.oke_enabled ? oci_containerengine_cluster.mlflow[0].id : ""

  # What `orm-pack oke deploy` reads (output oke_deploy_settings): strings only, secret OCIDs and never
  # a secret value. The tracking pods get the tracking VM's settings (cloudinit.tf) but the MySQL
  # administrator's, which only the migrations Job gets; MLflow listens on the pod's address for the
  # auth proxy pods in front of it. MLFLOW_DB_SSL_CA is the manifests': the file their init container writes
  # (oke/base/tracking.yaml), not the VM's.
  oke_tracking_env = merge(
    { for name, value in local.tracking_settings : name => value if !contains(["MYSQL_ADMIN_USER", "MYSQL_ADMIN_PASSWORD_SECRET_OCID", "MLFLOW_DB_SSL_CA"], name) },
    { MLFLOW_HOST = "0.0.0.0", MLFLOW_PORT = "5000", MLFLOW_WORKERS = "2" },
  )
  oke_deploy_settings = local.oke_enabled ? {
    cluster_id                 = local.cluster_id
    region                     = var.region
    namespace                  = local.oke_namespace
    tracking_image             = local.released_images["tracking"]
    tracking_env               = jsonencode(local.oke_tracking_env)
    migrate_env                = jsonencode({ MYSQL_ADMIN_USER = var.mysql_admin_username, MYSQL_ADMIN_PASSWORD_SECRET_OCID = local.secret_ids["mysql-admin"] })
    login_user                 = var.mlflow_username
    login_password_secret_ocid = local.secret_ids["mlflow-login"]
    lb_ip                      = oci_core_public_ip.oke_lb[0].ip_address
    lb_subnet_id               = local.public_subnet_id
    lb_nsg_id                  = local.nsg_ids["oke-lb"]
    ingress_cidr               = var.allowed_ingress_cidr
    mysql_cidr                 = "${local.mysql_private_ip}/32"
    max_request_body_mb        = tostring(var.max_request_body_mb)
    workers_cidr               = var.oke_workers_subnet_cidr
    # TLS (tls.tf): the proxy pods present this certificate; every pod keeps the CA's.
    tls_certificate_id = local.oke_tls_certificate_id
    tls_ca_id          = local.tls_ca_id
  } : {}
}

# --- What OKE offers in this region (read at plan time; checks.tf refuses what it does not offer) ---

data "oci_containerengine_cluster_option" "oke" {
  count = local.oke_enabled ? 1 : 0

  cluster_option_id = "all"
  compartment_id    = var.compartment_ocid
}

data "oci_containerengine_node_pool_option" "oke" {
  count = local.oke_enabled ? 1 : 0

  node_pool_option_id = "all"
  compartment_id      = var.compartment_ocid
}

data "oci_core_services" "oke" {
  count = local.oke_enabled ? 1 : 0

  filter {
    name   = "name"
    values = ["All .* Services In Oracle Services Network"]
    regex  = true
  }
}

# --- Network: the workers reach OCI services through a service gateway. Their subnet, the API
# endpoint's and their NAT gateway are roles in network.tf (the load balancer uses the public subnet) ---

resource "oci_core_service_gateway" "oke" {
  count = local.oke_enabled ? 1 : 0

  compartment_id = var.compartment_ocid
  vcn_id         = local.vcn_id
  display_name   = "${var.name_prefix}-oke-sgw"
  freeform_tags  = local.freeform_tags

  services {
    service_id = local.oracle_services_id
  }
}

# --- The cluster and its node pool ---

resource "oci_containerengine_cluster" "mlflow" {
  count = local.oke_enabled ? 1 : 0

  compartment_id     = var.compartment_ocid
  vcn_id             = local.vcn_id
  name               = "${var.name_prefix}-mlflow"
  type               = "BASIC_CLUSTER"
  kubernetes_version = var.kubernetes_version
  freeform_tags      = local.freeform_tags

  cluster_pod_network_options {
    cni_type = "FLANNEL_OVERLAY"
  }

  endpoint_config {
    subnet_id            = oci_core_subnet.mlflow["oke_api"].id
    is_public_ip_enabled = true
    nsg_ids              = [local.nsg_ids["oke-api"]]
  }

  options {
    service_lb_subnet_ids = [local.public_subnet_id]

    kubernetes_network_config {
      pods_cidr     = local.oke_pods_cidr
      services_cidr = local.oke_services_cidr
    }

    # PodSecurityPolicy left Kubernetes in 1.25: the mlflow namespace enforces the "restricted" Pod
    # Security Standard instead (oke/base/namespace.yaml).
    admission_controller_options {
      is_pod_security_policy_enabled = false
    }

    # Tags for what Kubernetes creates in OCI: the Service's load balancer and any volume.
    service_lb_config {
      freeform_tags = local.freeform_tags
    }

    persistent_volume_config {
      freeform_tags = local.freeform_tags
    }
  }
}

resource "oci_containerengine_node_pool" "workers" {
  for_each = local.oke_enabled ? toset([local.oke_node_pool_key]) : toset([])

  cluster_id     = oci_containerengine_cluster.mlflow[0].id
  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-workers"
  # From the cluster, so a new version's pool waits for the control plane's upgrade (a node may not
  # run a newer Kubernetes than its control plane).
  kubernetes_version = oci_containerengine_cluster.mlflow[0].kubernetes_version
  node_shape         = var.oke_node_shape
  ssh_public_key     = var.ssh_public_key == "" ? null : var.ssh_public_key
  freeform_tags      = local.freeform_tags

  node_shape_config {
    ocpus         = var.oke_node_ocpus
    memory_in_gbs = var.oke_node_memory_gb
  }

  node_source_details {
    source_type = "IMAGE"
    image_id    = local.oke_node_image
  }

  node_config_details {
    size                                = var.oke_node_count
    nsg_ids                             = [local.nsg_ids["oke-workers"]]
    is_pv_encryption_in_transit_enabled = true
    # Applied to every node the pool creates, now or when it scales or replaces one: the dynamic group
    # of the nodes matches this tag (iam.tf).
    defined_tags  = { "${local.oke_node_tag.namespace}.${local.oke_node_tag.key}" = local.oke_node_tag.value }
    freeform_tags = merge(local.freeform_tags, { "role" = "oke-worker" })

    dynamic "placement_configs" {
      for_each = local.oke_availability_domains
      content {
        availability_domain = placement_configs.value
        subnet_id           = oci_core_subnet.mlflow["oke_workers"].id
      }
    }

    node_pool_pod_network_option_details {
      cni_type = "FLANNEL_OVERLAY"
    }
  }

  # the nodes' defined tag is usable only once OCI has propagated it (waits.tf)
  depends_on = [time_sleep.oke_node_tag]

  lifecycle {
    ignore_changes = [node_source_details[0].image_id]
  }
}

# --- The defined tag of the nodes (home region, like all identity writes) ---
# A tag namespace of this stack in its compartment, where the node pool is too, so OKE may apply it
# without a policy of its own (OKE asks for one only for a namespace in another compartment).
# Destroying the stack deletes the tag and then its namespace; OCI deletes a tag definition
# asynchronously and the provider waits for it, which can take tens of minutes.

resource "oci_identity_tag_namespace" "oke" {
  count    = local.oke_enabled ? 1 : 0
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-oke-${local.iam_suffix}"
  description    = "Tags of the MLflow stack ${var.name_prefix}: its OKE worker nodes' dynamic group matches them"
  freeform_tags  = local.freeform_tags
}

resource "oci_identity_tag" "oke_node_pool" {
  count    = local.oke_enabled ? 1 : 0
  provider = oci.home

  tag_namespace_id = oci_identity_tag_namespace.oke[0].id
  name             = "node-pool"
  description      = "The node pool of an OKE worker node of the MLflow stack ${var.name_prefix}"
  freeform_tags    = local.freeform_tags
}
