# Outputs shown by Resource Manager (schema.yaml groups them; mlflow_url is the primary button).
# None of them carries a secret value: the passwords are in Vault, the outputs name their OCIDs.

output "mlflow_url" {
  description = "MLflow UI and API (HTTPS, basic auth with mlflow_username and the password in Vault: see mlflow_password_command; a certificate from the stack's CA, see tls_ca_command). With deployment_target = \"oke\": the reserved address of the load balancer that orm-pack oke deploy has Kubernetes create; it answers once that has run."
  value       = local.tracking_url
}

output "tracking_public_ip" {
  description = "Reserved public IP of the tracking VM (stays the same when the VM is replaced); with deployment_target = \"oke\", of MLflow's load balancer (stays the same across orm-pack oke delete and deploy)."
  value       = local.tracking_address
}

output "serving_public_ip" {
  description = "Reserved public IP of the serving VM; empty when serving is disabled (always with deployment_target = \"oke\")."
  value       = local.serving_enabled ? oci_core_public_ip.vm["serving"].ip_address : ""
}

output "serving_url" {
  description = "Model endpoint base URL (POST <url>/invocations, basic auth); empty when serving is disabled (always with deployment_target = \"oke\")."
  value       = local.serving_url
}

output "doctor_command" {
  description = "Checks the deployment end to end with orm-pack doctor (TLS, /health, the MLflow version the stack sets, the login, UI writes, artifacts, the alias and the model endpoint), with MLFLOW_TRACKING_PASSWORD (mlflow_password_command) and MLFLOW_TRACKING_SERVER_CERT_PATH (tls_ca_command) exported; its version check fails when the tracking VM refused an upgrade at boot."
  value       = "orm-pack doctor ${local.tracking_url} --mlflow-version ${var.mlflow_version}${local.serving_enabled ? " --serving-url ${local.serving_url}" : ""}"
}

output "bucket_name" {
  description = "Object Storage bucket that holds the MLflow artifacts (under the artifacts/ prefix)."
  value       = oci_objectstorage_bucket.artifacts.name
}

output "object_storage_namespace" {
  description = "Object Storage namespace of the tenancy."
  value       = local.namespace
}

output "s3_endpoint" {
  description = "S3-compatible endpoint of Object Storage in this region (the tracking server's with artifact_store = \"s3\"; S3 tools can use it with a customer secret key)."
  value       = local.s3_endpoint
}

output "artifact_store" {
  description = "Where the tracking server writes artifacts: oci://<bucket>@<namespace>/artifacts through its instance principal, or s3://<bucket>/artifacts with artifact_store = \"s3\"."
  value       = local.artifacts_destination
}

output "mysql_private_ip" {
  description = "Private IP of the MySQL HeatWave DB system (reachable from the tracking VM only)."
  value       = oci_mysql_mysql_db_system.mlflow.ip_address
}

# What `orm-pack upgrade` reads: the MLflow version the tracking server runs, the VM it sends its checks to
# through Run Command (userdata/mlflow-upgrade.sh), and the DB system it backs up first.
output "mlflow_version" {
  description = "MLflow version of the tracking server (variable mlflow_version)."
  value       = var.mlflow_version
}

output "tracking_instance_id" {
  description = "OCID of the tracking VM, where orm-pack upgrade runs mlflow-upgrade plan VERSION and status through Run Command; empty with deployment_target = \"oke\"."
  value       = local.oke_enabled ? "" : local.instances["tracking"].id
}

output "mysql_db_system_id" {
  description = "OCID of the MySQL HeatWave DB system that holds the MLflow database (orm-pack upgrade backs it up before an upgrade)."
  value       = oci_mysql_mysql_db_system.mlflow.id
}

output "commands_tracking" {
  description = "The tracking VM's /home/opc/commands.txt: what runs, logs, restart, password rotation, notebook and curl usage; empty with deployment_target = \"oke\"."
  value       = local.commands_text.tracking
}

output "commands_serving" {
  description = "The serving VM's /home/opc/commands.txt; empty when serving is disabled."
  value       = local.commands_text.serving
}

output "notebook_setup" {
  description = "Environment variables that connect a notebook or script to this MLflow server (the password is read from Vault, the servers' CA certificate from OCI Certificates, with the OCI CLI)."
  value = join("\n", [
    local.tls_ca_command,
    "export MLFLOW_TRACKING_SERVER_CERT_PATH=$PWD/mlflow-ca.pem",
    "export MLFLOW_TRACKING_URI=${local.tracking_url}",
    "export MLFLOW_TRACKING_USERNAME=${var.mlflow_username}",
    "export MLFLOW_TRACKING_PASSWORD=$(${local.read_login_command})",
    "",
  ])
}

output "mlflow_username" {
  description = "The MLflow user of mlflow_password_command's password (the first administrator with per-person users or single sign-on)."
  value       = var.mlflow_username
}

output "mlflow_password_command" {
  description = "Prints the MLflow password (typed in the form or generated by Vault) with the OCI CLI; needs 'read secret-bundles' on the secret."
  value       = local.read_login_command
}

output "vault_secrets" {
  description = "OCIDs of this stack's Vault secrets (the values never leave Vault but for the VMs that read them)."
  value = merge(local.secret_ids,
    { for key, secret in oci_vault_secret.sso : replace(secret.secret_name, "${var.name_prefix}-", "") => secret.id },
  { for role, secret in oci_vault_secret.tls : "tls-${role}" => secret.id })
}

output "vault_id" {
  description = "The Vault that holds this stack's secrets."
  value       = local.vault_id
}

output "iam_dynamic_groups" {
  description = "Dynamic groups of this stack's VMs (and of its MySQL DB system) and their matching rules (created when create_iam_policies is true; otherwise an administrator creates them in the home region)."
  value       = merge(local.dynamic_group_rules, { (local.mysql_dynamic_group_name) = local.mysql_dynamic_group_rule })
}

output "iam_statements" {
  description = "The policy statements that let the VMs read their secrets and write the artifact bucket (created when create_iam_policies is true; otherwise an administrator adds them in the home region)."
  value       = local.iam_statements
}

output "s3_access_key_id" {
  description = "Access key ID of the customer secret key the tracking VM uses with artifact_store = \"s3\" (not secret; the secret key is in Vault); empty otherwise."
  value       = local.s3_access_key
}

output "notebook_session_url" {
  description = "The Data Science notebook session wired to MLflow (create_notebook_session); open examples/wine/train.ipynb in it. Empty otherwise."
  value       = local.notebook_enabled ? oci_datascience_notebook_session.mlflow[0].notebook_session_url : ""
}

# --- deployment_target = "oke" (oke.tf): null or empty otherwise ---

output "oke_cluster_id" {
  description = "OCID of the OKE cluster (deployment_target = \"oke\"); null otherwise."
  value       = local.oke_enabled ? local.cluster_id : null
}

output "oke_kubeconfig_command" {
  description = "Writes the OKE cluster's kubeconfig into ~/.kube/config with the OCI CLI, for kubectl through the public API endpoint (reachable from allowed_ingress_cidr); empty unless deployment_target = \"oke\"."
  value       = local.oke_enabled ? "oci ce cluster create-kubeconfig --cluster-id ${local.cluster_id} --file $HOME/.kube/config --region ${var.region} --token-version 2.0.0 --kube-endpoint PUBLIC_ENDPOINT" : ""
}

output "oke_next_command" {
  description = "What to run next with deployment_target = \"oke\": orm-pack oke deploy puts the tracking server on the cluster and prints the MLflow URL (Resource Manager does not tell the stack its own name: --stack-name is orm-pack's default, give yours). Empty otherwise."
  value       = local.oke_enabled ? "orm-pack oke deploy --compartment ${var.compartment_ocid} --stack-name oci-mlflow" : ""
}

output "oke_deploy_settings" {
  description = "What orm-pack oke deploy reads (deployment_target = \"oke\"; empty otherwise): the cluster, the tracking image and the tracking pods' settings as JSON (Vault secret OCIDs, never a secret value), the migrations Job's administrator settings, the login's user and secret, the load balancer's reserved address, subnet and NSG, the CIDRs of the allowed clients, the DB system and the worker nodes, and the OCIDs of the certificate the proxy pods present and of the CA that issued it."
  value       = local.oke_deploy_settings
}

output "sso_application" {
  description = "With mlflow_users = sso: the identity domain application people sign in through (its client id is no secret; the client secret stays in Vault), and the one step the stack cannot take: the domain administrator adds a groups claim to the domain's tokens (README, Single sign-on)."
  value = local.sso_enabled ? {
    domain_url   = local.sso_domain_url
    client_id    = oci_identity_domains_app.sso[0].name
    redirect_uri = local.sso_redirect_uri
    admin_group  = var.sso_admin_group
    user_group   = var.sso_user_group
    groups_claim = "POST ${local.sso_domain_url}/admin/v1/CustomClaims as an Identity Domain Administrator, body ${jsonencode(local.sso_groups_claim)}"
    # the same request, made and checked by orm-pack with the user's API key
    groups_claim_command = "orm-pack sso groups-claim --domain-url ${local.sso_domain_url}"
  } : null
}

output "tls_ca_id" {
  description = "OCID of the stack's private certificate authority (OCI Certificates), which issues the TLS certificates of the VMs (or, on OKE, of the load balancer's address) and of the MySQL DB system; clients verify with its certificate (tls_ca_command)."
  value       = local.tls_ca_id
}

output "tls_ca_command" {
  description = "Writes the CA's certificate to mlflow-ca.pem with the OCI CLI (e.g. in Cloud Shell); then export MLFLOW_TRACKING_SERVER_CERT_PATH=$PWD/mlflow-ca.pem, or import it into a browser."
  value       = local.tls_ca_command
}

output "observability" {
  description = "Where the deployment's logs, audit trail, metrics and alarms are, and what an alarm e-mail needs: OCI mails a confirmation link to alarm_email, and no alarm arrives until it is followed."
  value = join("\n", compact([
    !local.oke_enabled ? "Logs: OCI Logging > log group ${var.name_prefix}-logs (service: ${var.name_prefix}-service, audit trail: ${var.name_prefix}-audit)"
    : var.create_iam_policies ? "Logs: OCI Logging > log group ${var.name_prefix}-logs > ${var.name_prefix}-service (every container of namespace ${local.oke_namespace}, the audit trail's lines among the tracking pods'; the nodes' agent configuration ${var.name_prefix}-oke-pods)"
    : "Logs: kubectl logs -n ${local.oke_namespace} deployment/mlflow-tracking (without create_iam_policies the stack cannot point the nodes' agent at log ${var.name_prefix}-service: an administrator adds an agent configuration for the nodes' dynamic group)",
    "Metrics: Monitoring > Metrics Explorer, namespace mlflow, deployment = ${var.name_prefix}${local.oke_enabled ? "; Prometheus: the mlflow-metrics pod's :9464/metrics, each mlflow-proxy pod's :9465/metrics (requests)" : ""}",
    !var.create_dashboard ? "" : "Dashboard: Observability & Management > Dashboards > ${var.name_prefix} MLflow (https://cloud.oracle.com/management-dashboard/dashboards?region=${var.region}); a destroy from the console leaves it: orm-pack destroy deletes it",
    "Alarms: ${join(", ", [for name in sort(keys(local.deployed_alarms)) : "${var.name_prefix}-${name}"])} > topic ${var.name_prefix}-alarms",
    var.alarm_email == "" ? "" : "Confirm the subscription: OCI sent ${var.alarm_email} a confirmation link; no alarm arrives until it is followed.",
  ]))
}

output "dashboard_id" {
  description = "The Management Dashboard of the deployment's metrics (dashboard.tf; empty when create_dashboard is false). Terraform cannot delete it: orm-pack destroy does, with dashboard_saved_search_ids."
  value       = var.create_dashboard ? local.dashboard_id : ""
}

output "dashboard_saved_search_ids" {
  description = "The saved searches (widgets) of the dashboard, space-separated (empty when create_dashboard is false): what a destroy leaves besides the dashboard."
  value       = join(" ", [for widget in local.dashboard_widgets : local.dashboard_searches[widget.key]])
}
