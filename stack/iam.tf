# Who may read what: one dynamic group per VM role, matching exactly this stack's instance of that role
# (and one for the notebook session), and one policy whose statements name this stack's secrets and
# bucket and nothing else:
#   tracking  takes the commands sent to it by Run Command (orm-pack upgrade), and only those;
#             reads its secrets (MySQL admin, MLflow DB user, login, S3 key with artifact_store = "s3",
#             with sso the identity domain application's two, by name in the stack's vault) and manages
#             objects in the artifact bucket (artifact_store = "oci"), and its pre-authenticated
#             requests (PAR_MANAGE only), which hand clients one object for a short while
#             (with per-person or sso also serving-login and notebook-login: it sets those users' passwords)
#   serving   with mlflow_users = "shared": the login secret (to talk to the tracking server and to guard
#             its own endpoint); with per-person or sso: its own serving-login alone (its proxy asks the
#             tracking server and keeps no login), never the admin's mlflow-login
#   notebook  (create_notebook_session; its resource principal) the login secret with "shared", its own
#             notebook-login with per-person or sso
#   workers   the OKE worker nodes (deployment_target = "oke"), whose pods run the tracking server, its
#             migrations and its auth proxy: the tracking VM's statements but the MySQL administrator's
#             secret. On a basic cluster every pod has the nodes' identity, so that secret is read by
#             `orm-pack oke deploy` with the user's key and given to the migrate Job alone (oke/). They
#             read mlflow-login (the proxy's login, or MLflow's first admin) and, like the tracking VM,
#             notebook-login.
#   cluster   (oke) OKE's cloud controller, which assigns the load balancer its reserved public IP
#   each VM   (tls.tf) its own TLS certificate with the private key, the CA's certificate, and the secret
#             naming its certificate; the stack's CA uses its HSM key (policy "tls_ca")
#   workers   (tls.tf) the load balancer's certificate with the private key, and the CA's certificate
#   mysql     the MySQL DB systems of the compartment (their resource principal) read the DB system's
#             certificate, and only that one (policy "mysql_certificate")
# IAM writes go to the home region (provider oci.home). With create_iam_policies = false nothing here is
# created and the outputs iam_dynamic_groups and iam_statements say what an administrator must add;
# the statements then name the dynamic groups instead of their OCIDs.

locals {
  iam_suffix = substr(sha256(var.compartment_ocid), 0, 8) # dynamic group names are unique per tenancy
  iam_roles  = concat(keys(local.vm_shapes), local.notebook_enabled ? ["notebook"] : [], local.oke_enabled ? ["workers"] : [])
  dynamic_group_names = {
    for role in local.iam_roles : role => "${var.name_prefix}-${role}-${local.iam_suffix}"
  }
  # The OKE worker nodes cannot be named by instance.id: the pool creates, replaces and scales them
  # after the apply. A matching rule can name an instance by its OCID, its compartment or a defined tag
  # (IAM docs, "Writing Matching Rules to Define Dynamic Groups"; free-form tags cannot be used), and OKE
  # documents exactly this for authorizing a node pool's nodes: a defined tag on the pool's nodes and a
  # dynamic group matching it ("Managing Access By Applying Tags to Cluster-Related Resources"). The
  # rule asks for both this stack's compartment and this stack's own tag namespace (oke.tf): the
  # compartment alone would also admit every other instance of the compartment, the tag alone an
  # instance tagged in another compartment. What remains: someone allowed both to launch instances in
  # this compartment and to use this tag namespace could tag an instance into the group.
  dynamic_group_rules = {
    for role, name in local.dynamic_group_names : name => (
      role == "notebook" ? "ALL {resource.type = 'datasciencenotebooksession', resource.id = '${oci_datascience_notebook_session.mlflow[0].id}'}"
      : role == "workers" ? "ALL {instance.compartment.id = '${var.compartment_ocid}', tag.${local.oke_node_tag.namespace}.${local.oke_node_tag.key}.value = '${local.oke_node_tag.value}'}"
      : "ALL {instance.id = '${local.instances[role].id}'}"
    )
  }
  iam_subjects = {
    for role, name in local.dynamic_group_names : role => (
      var.create_iam_policies ? "dynamic-group id ${oci_identity_dynamic_group.vm[role].id}" : "dynamic-group ${name}"
    )
  }
  # The DB system reads its certificate while it is created, before it has an OCID a rule could name: the
  # rule is the one HeatWave documents for "bring your own certificate" (Resource Principals), and the
  # policy names the certificate. A resource of its own: the VMs' groups name the VMs, which the DB system
  # must not wait for.
  mysql_dynamic_group_name = "${var.name_prefix}-mysql-${local.iam_suffix}"
  mysql_dynamic_group_rule = "ALL {resource.type = 'mysqldbsystem', resource.compartment.id = '${var.compartment_ocid}'}"
  mysql_iam_subject        = var.create_iam_policies ? "dynamic-group id ${oci_identity_dynamic_group.mysql[0].id}" : "dynamic-group ${local.mysql_dynamic_group_name}"

  readable_secrets = {
    tracking = [for name in local.secret_names : local.secret_ids[name]]
    serving  = [local.serving_login.secret]
    notebook = [local.notebook_login.secret]
    workers  = [for name in local.secret_names : local.secret_ids[name] if name != "mysql-admin"]
  }
  # What the dynamic groups may do (policy "vm"), and everything an administrator adds without IAM.
  principal_statements = flatten([
    for role in local.iam_roles : concat(
      [format("Allow %s to read secret-bundles in compartment id %s where any {%s}",
        local.iam_subjects[role], var.compartment_ocid,
      join(", ", [for id in local.readable_secrets[role] : "target.secret.id = '${id}'"]))],
      # The identity domain application's credentials, read by name (sso.tf): granted by their names,
      # which carry the stack's prefix. Vault's policy reference names target.secret.name for a read of
      # secret-bundles; nothing documents target.vault.id as set for a read by name, so it is not used.
      contains(["tracking", "workers"], role) && local.sso_enabled ? [format(
        "Allow %s to read secret-bundles in compartment id %s where any {%s}",
        local.iam_subjects[role], var.compartment_ocid,
      join(", ", [for name in sort(values(local.sso_secret_names)) : "target.secret.name = '${name}'"]))] : [],
      contains(["tracking", "workers"], role) && var.artifact_store == "oci" ? [
        "Allow ${local.iam_subjects[role]} to manage objects in compartment id ${var.compartment_ocid} where target.bucket.name = '${local.bucket_name}'",
        # Pre-authenticated requests for this bucket alone (PAR_MANAGE, of `manage buckets`, and no other
        # permission of it): the tracking server hands a client short-lived PARs for one object so large
        # artifacts go to and from Object Storage directly (docker/lib/mlflow_oci/artifacts.py).
        "Allow ${local.iam_subjects[role]} to manage buckets in compartment id ${var.compartment_ocid} where all {target.bucket.name = '${local.bucket_name}', request.permission = 'PAR_MANAGE'}",
      ] : [],
      # TLS (tls.tf): its own certificate with the private key, that bundle type alone; the CA's certificate;
      # and the secret that holds its certificate's OCID, by the name the stack gave it.
      contains(keys(local.tls_certificate_ids), role) ? [
        "Allow ${local.iam_subjects[role]} to read secret-bundles in compartment id ${var.compartment_ocid} where any {target.secret.name = '${local.tls_certificate_secret_names[role]}'}",
        "Allow ${local.iam_subjects[role]} to read leaf-certificate-bundles in compartment id ${var.compartment_ocid} where all {target.leaf-certificate.id = '${local.tls_certificate_ids[role]}', target.leaf-certificate.bundle-type = 'CERTIFICATE_CONTENT_WITH_PRIVATE_KEY'}",
        "Allow ${local.iam_subjects[role]} to read certificate-authority-bundles in compartment id ${var.compartment_ocid} where target.certificate-authority.id = '${local.tls_ca_id}'",
      ] : [],
      # OKE (tls.tf): the proxy pods present the load balancer's certificate, read with its private key (that
      # certificate and bundle type alone), and every pod keeps the CA's (the tracking pods verify MySQL with
      # it). A basic cluster gives every pod the nodes' identity: workload identity, which could single out
      # the proxy pods' service account, is a feature of enhanced clusters.
      role == "workers" ? [
        "Allow ${local.iam_subjects[role]} to read leaf-certificate-bundles in compartment id ${var.compartment_ocid} where all {target.leaf-certificate.id = '${local.oke_tls_certificate_id}', target.leaf-certificate.bundle-type = 'CERTIFICATE_CONTENT_WITH_PRIVATE_KEY'}",
        "Allow ${local.iam_subjects[role]} to read certificate-authority-bundles in compartment id ${var.compartment_ocid} where target.certificate-authority.id = '${local.tls_ca_id}'",
      ] : [],
      # Run Command on the tracking VM (orm-pack upgrade): the Compute Instance Run Command plugin fetches the
      # commands sent to the VM and reports their results with the VM's identity, which needs the statement
      # OCI documents for it ("Running Commands on an Instance", Prerequisites,
      # https://docs.oracle.com/en-us/iaas/Content/Compute/Tasks/runningcommands.htm), limited as those docs
      # show with request.instance.id = target.instance.id: a VM takes only the commands addressed to itself.
      # Sending commands is the user's (manage instance-agent-command-family), not the stack's to grant.
      role == "tracking" ? [
        "Allow ${local.iam_subjects[role]} to use instance-agent-command-execution-family in compartment id ${var.compartment_ocid} where request.instance.id = target.instance.id",
      ] : [],
      # Each VM ships its journal to the stack's custom logs (logging.tf), as the OKE nodes' agent ships the pods':
      # PutLogs needs `use log-content`, which Logging's policy reference lets a condition on target.loggroup.id
      # narrow to this stack's log group.
      contains(["tracking", "serving", "workers"], role) ? [
        "Allow ${local.iam_subjects[role]} to use log-content in compartment id ${var.compartment_ocid} where target.loggroup.id = '${local.log_group_id}'",
      ] : [],
      # Each VM (mlflow-metrics.timer), or on OKE the metrics pod as its node (oke/base/metrics.yaml), posts its
      # metrics to the custom namespace `mlflow` and no other (Monitoring's policy reference: target.metrics.namespace).
      contains(["tracking", "serving", "workers"], role) ? [
        "Allow ${local.iam_subjects[role]} to use metrics in compartment id ${var.compartment_ocid} where target.metrics.namespace = 'mlflow'",
      ] : [],
      # The notebook verifies the servers with the CA's certificate (examples/wine/mlflow_connect.py).
      role == "notebook" ? [
        "Allow ${local.iam_subjects[role]} to read certificate-authority-bundles in compartment id ${var.compartment_ocid} where target.certificate-authority.id = '${local.tls_ca_id}'",
      ] : [],
    )
  ])
  iam_statements = concat(local.principal_statements, local.oke_cluster_statements, local.tls_ca_statements, local.mysql_certificate_statements, local.datascience_service_statements, local.object_lifecycle_statements)

  # Object Storage deletes old versions and aborts stale uploads for the bucket's lifecycle rules (storage.tf)
  # as its own service principal: the documented statement, limited to the artifact bucket.
  object_lifecycle_statements = [
    "Allow service objectstorage-${var.region} to manage object-family in compartment id ${var.compartment_ocid} where target.bucket.name = '${local.bucket_name}'",
  ]

  # The stack's CA signs with its HSM key: OCI Certificates documents this statement for a CA's use of its
  # key ("Required IAM Policy" of Certificates), here limited to that key. A policy of its own, created
  # before the CA (waits.tf): the VMs' policy names the VMs, which are created after the CA.
  tls_ca_statements = [
    "Allow any-user to use keys in compartment id ${var.compartment_ocid} where all {request.principal.type = 'certificateauthority', target.key.id = '${local.tls_ca_key_id}'}",
  ]

  # HeatWave documents "read leaf-certificate-family" for a DB system's own certificate (Mandatory Policies
  # and Permissions: bring your own certificate); here limited to the certificate the stack made for it.
  # A policy of its own, which the DB system waits for (waits.tf).
  mysql_certificate_statements = [
    "Allow ${local.mysql_iam_subject} to read leaf-certificate-family in compartment id ${var.compartment_ocid} where target.leaf-certificate.id = '${local.tls_mysql_certificate_id}'",
  ]

  # OKE's cloud controller gives the load balancer its reserved address (public_ips.tf) as the cluster
  # itself: it looks the address up and assigns it. OKE documents these two grants for a reserved IP in
  # another compartment than the cluster's ("Specifying Load Balancer Reserved IP"); here they are limited
  # to this compartment, where the address is, and to this cluster (a cluster principal's id is its OCID).
  oke_cluster_statements = local.oke_enabled ? [
    for grant in ["read public-ips", "manage floating-ips"] :
    "Allow any-user to ${grant} in compartment id ${var.compartment_ocid} where all {request.principal.type = 'cluster', request.principal.id = '${local.cluster_id}'}"
  ] : []

  # Data Science attaches a notebook session to a customer subnet only with this (its service policy).
  datascience_service_statements = local.notebook_enabled ? [
    "Allow service datascience to use virtual-network-family in compartment id ${var.compartment_ocid}",
  ] : []
}

resource "oci_identity_dynamic_group" "vm" {
  for_each = var.create_iam_policies ? local.dynamic_group_names : {}
  provider = oci.home

  compartment_id = var.tenancy_ocid
  name           = each.value
  description    = "The ${each.key == "notebook" ? "notebook session" : each.key == "workers" ? "OKE worker nodes" : "${each.key} VM"} of the MLflow stack ${var.name_prefix}"
  matching_rule  = local.dynamic_group_rules[each.value]
  freeform_tags  = local.freeform_tags
}

resource "oci_identity_dynamic_group" "mysql" {
  count    = var.create_iam_policies ? 1 : 0
  provider = oci.home

  compartment_id = var.tenancy_ocid
  name           = local.mysql_dynamic_group_name
  description    = "The MySQL DB systems of the MLflow stack ${var.name_prefix}'s compartment (they read the DB system's TLS certificate)"
  matching_rule  = local.mysql_dynamic_group_rule
  freeform_tags  = local.freeform_tags
}

resource "oci_identity_policy" "vm" {
  count    = var.create_iam_policies ? 1 : 0
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-vms-${local.iam_suffix}"
  description    = "Lets the ${local.oke_enabled ? "OKE worker nodes" : "VMs"} of the MLflow stack ${var.name_prefix} read their Vault secrets and write the artifact bucket${local.oke_enabled ? ", and its cluster give the load balancer its reserved address" : ""}"
  statements     = concat(local.principal_statements, local.oke_cluster_statements)
  freeform_tags  = local.freeform_tags
}

resource "oci_identity_policy" "tls_ca" {
  count    = var.create_iam_policies ? 1 : 0
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-ca-${local.iam_suffix}"
  description    = "Lets the private CA of the MLflow stack ${var.name_prefix} sign with its key"
  statements     = local.tls_ca_statements
  freeform_tags  = local.freeform_tags
}

resource "oci_identity_policy" "mysql_certificate" {
  count    = var.create_iam_policies ? 1 : 0
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-mysql-${local.iam_suffix}"
  description    = "Lets the MySQL DB system of the MLflow stack ${var.name_prefix} read its TLS certificate"
  statements     = local.mysql_certificate_statements
  freeform_tags  = local.freeform_tags
}

# Created before the notebook session (which the policy above names), so it is a policy of its own.
resource "oci_identity_policy" "datascience" {
  count    = var.create_iam_policies && local.notebook_enabled ? 1 : 0
  provider = oci.home

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-datascience-${local.iam_suffix}"
  description    = "Lets Data Science attach the MLflow stack ${var.name_prefix}'s notebook session to its subnet"
  statements     = local.datascience_service_statements
  freeform_tags  = local.freeform_tags
}
