locals {
  # -------------------------------------------------------------------------------------------
  # Where the non-Terraform assets are. In the repository the root module is stack/ and the
  # assets sit one level up; in the Resource Manager zip every *.tf file is flattened next to
  # schema.yaml, userdata/ and docker/. This is the only place that knows the difference.
  # -------------------------------------------------------------------------------------------
  assets_dir   = fileexists("${path.module}/userdata/mlflow-bootstrap.sh") ? path.module : "${path.module}/.."
  userdata_dir = "${local.assets_dir}/userdata"
  docker_dir   = "${local.assets_dir}/docker"

  # Empty API-key settings become null, so the provider falls back to its own configuration.
  api_key = {
    user_ocid        = var.user_ocid == "" ? null : var.user_ocid
    fingerprint      = var.fingerprint == "" ? null : var.fingerprint
    private_key_path = var.private_key_path == "" ? null : var.private_key_path
  }

  # The release (VERSION, beside schema.yaml) and the images it published (docker/images.json, written
  # by the release workflow: role -> sha256 digest).
  release       = trimspace(file("${local.assets_dir}/VERSION"))
  image_digests = fileexists("${local.docker_dir}/images.json") ? jsondecode(file("${local.docker_dir}/images.json")) : {}
  # The MLflow versions this release's tracking image runs (docker/requirements-tracking*.lock): its own
  # first, then the two a deployment may come from and go back to (variable mlflow_version). The release's
  # tracking image of its own version is oci-mlflow-tracking:<release> (digest key "tracking"), of another
  # oci-mlflow-tracking:<release>-mlflow<version> (digest key "tracking-<version>"); empty without a registry.
  mlflow_versions = ["3.17.2", "3.16.1", "3.15.2"]
  tracking_images = {
    for version in local.mlflow_versions : version => var.container_registry == "" ? "" : (
      lookup(local.image_digests, version == local.mlflow_versions[0] ? "tracking" : "tracking-${version}", "") != ""
      ? "${var.container_registry}/oci-mlflow-tracking@${local.image_digests[version == local.mlflow_versions[0] ? "tracking" : "tracking-${version}"]}"
      : "${var.container_registry}/oci-mlflow-tracking:${local.release}${version == local.mlflow_versions[0] ? "" : "-mlflow${version}"}"
    )
  }
  released_images = {
    tracking = local.tracking_images[var.mlflow_version]
    serving = var.container_registry == "" ? "" : (
      lookup(local.image_digests, "serving", "") != ""
      ? "${var.container_registry}/oci-mlflow-serving@${local.image_digests["serving"]}"
      : "${var.container_registry}/oci-mlflow-serving:${local.release}"
    )
  }

  freeform_tags = {
    "app"        = "mlflow"
    "stack-name" = var.name_prefix
  }

  availability_domain = var.availability_domain != "" ? var.availability_domain : data.oci_identity_availability_domains.this.availability_domains[0].name

  # -------------------------------------------------------------------------------------------
  # Where the tracking server runs (oke.tf for the cluster). With oke there is no VM at all: the
  # serving endpoint is a VM feature, and serving_enabled (true by default, and submitted by the form
  # even when hidden) is ignored rather than refused.
  # -------------------------------------------------------------------------------------------
  oke_enabled     = var.deployment_target == "oke"
  serving_enabled = var.serving_enabled && !local.oke_enabled

  # -------------------------------------------------------------------------------------------
  # Compute
  # -------------------------------------------------------------------------------------------
  vm_shapes = local.oke_enabled ? {} : merge(
    { tracking = var.tracking_shape },
    local.serving_enabled ? { serving = var.serving_shape } : {},
  )
  vm_sizes = {
    tracking = { ocpus = var.tracking_ocpus, memory_in_gbs = var.tracking_memory_gb }
    serving  = { ocpus = var.serving_ocpus, memory_in_gbs = var.serving_memory_gb }
  }
  requested_image_ids = { tracking = var.tracking_image_id, serving = var.serving_image_id }
  chosen_image_ids    = { for vm, id in local.requested_image_ids : vm => id if id != "" && contains(keys(local.vm_shapes), vm) }
  image_ids = {
    for vm, shape in local.vm_shapes : vm => (
      contains(keys(local.chosen_image_ids), vm)
      ? local.chosen_image_ids[vm]
      : try(data.oci_core_images.oracle_linux[vm].images[0].id, "")
    )
  }

  # The tracking VM's private address: the serving VM's settings name it before the VM exists.
  tracking_private_ip = var.tracking_private_ip != "" ? var.tracking_private_ip : cidrhost(local.public_subnet_cidr, 10)

  # 1 worker per 2 GB of the VM, 1-4: 2 workers use about 0.65 GiB, MLflow's own defaults about 2.3 GiB
  # (PSS under light load, benchmarks/bench_runtime_memory.py).
  mlflow_workers = max(1, min(4, floor(var.tracking_memory_gb / 2), var.tracking_ocpus * 2))

  # -------------------------------------------------------------------------------------------
  # Network
  # -------------------------------------------------------------------------------------------
  vcn_id              = var.use_existing_vcn ? var.existing_vcn_id : oci_core_vcn.mlflow[0].id
  public_subnet_id    = var.use_existing_vcn ? var.existing_public_subnet_id : oci_core_subnet.mlflow["public"].id
  private_subnet_id   = var.use_existing_vcn ? var.existing_private_subnet_id : oci_core_subnet.mlflow["private"].id
  public_subnet_cidr  = var.use_existing_vcn ? data.oci_core_subnet.existing_public[0].cidr_block : var.public_subnet_cidr
  private_subnet_cidr = var.use_existing_vcn ? data.oci_core_subnet.existing_private[0].cidr_block : var.private_subnet_cidr

  tracking_port = 443
  serving_port  = 1234
  mysql_ports   = [3306, 33060]

  # -------------------------------------------------------------------------------------------
  # Database
  # -------------------------------------------------------------------------------------------
  is_free_mysql       = var.mysql_shape == "MySQL.Free"
  mysql_storage_gb    = local.is_free_mysql ? 50 : var.mysql_data_storage_gb
  mysql_configuration = try(data.oci_mysql_mysql_configurations.standalone.configurations[0].id, null)

  # The DB's address is known before the DB system exists, so the VMs boot, install and pull while
  # MySQL is created (about 10 minutes) and wait for it only at their first SQL.
  existing_mysql_ips = [
    for db in data.oci_mysql_mysql_db_systems.this_stack.db_systems : try(db.endpoints[0].ip_address, "")
    if !contains(["DELETING", "DELETED", "FAILED"], db.state)
  ]
  mysql_private_ip = (
    length(local.existing_mysql_ips) > 0 ? local.existing_mysql_ips[0] :
    var.mysql_private_ip != "" ? var.mysql_private_ip : cidrhost(local.private_subnet_cidr, 10)
  )

  # -------------------------------------------------------------------------------------------
  # Object Storage
  # -------------------------------------------------------------------------------------------
  namespace     = data.oci_objectstorage_namespace.this.namespace
  bucket_name   = "${var.name_prefix}-artifacts-${substr(sha256(var.compartment_ocid), 0, 8)}"
  s3_endpoint   = "https://${local.namespace}.compat.objectstorage.${var.region}.oraclecloud.com"
  create_s3_key = var.artifact_store == "s3" && var.s3_credentials_source == "create"
  s3_access_key = var.artifact_store != "s3" ? "" : (local.create_s3_key ? oci_identity_customer_secret_key.mlflow[0].id : var.s3_access_key)
  # The provider does not mark a customer secret key sensitive; from here on Terraform does.
  s3_secret_key = var.artifact_store != "s3" ? "" : (local.create_s3_key ? sensitive(oci_identity_customer_secret_key.mlflow[0].key) : var.s3_secret_key)
  # What the tracking server writes artifacts to (under the artifacts/ prefix of the bucket).
  artifacts_destination = var.artifact_store == "oci" ? "oci://${local.bucket_name}@${local.namespace}/artifacts" : "s3://${local.bucket_name}/artifacts"
}
