# Outputs shown by Resource Manager (schema.yaml groups them; mlflow_url is the primary button).
# None of them carries a secret: passwords and the S3 secret key stay in the sensitive variables.

output "mlflow_url" {
  description = "MLflow UI and API (HTTPS, basic auth with mlflow_username / mlflow_password; self-signed certificate)."
  value       = local.tracking_url
}

output "tracking_public_ip" {
  description = "Reserved public IP of the tracking VM (stays the same when the VM is replaced)."
  value       = oci_core_public_ip.vm["tracking"].ip_address
}

output "serving_public_ip" {
  description = "Reserved public IP of the serving VM; empty when serving is disabled."
  value       = var.serving_enabled ? oci_core_public_ip.vm["serving"].ip_address : ""
}

output "serving_url" {
  description = "Model endpoint base URL (POST <url>/invocations, basic auth); empty when serving is disabled."
  value       = local.serving_url
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
  description = "S3-compatible endpoint of Object Storage that the tracking server uses."
  value       = local.s3_endpoint
}

output "mysql_private_ip" {
  description = "Private IP of the MySQL HeatWave DB system (reachable from the tracking VM only)."
  value       = oci_mysql_mysql_db_system.mlflow.ip_address
}

output "commands_tracking" {
  description = "The tracking VM's /home/opc/commands.txt: what runs, logs, restart, password rotation, notebook and curl usage."
  value       = local.commands_text.tracking
}

output "commands_serving" {
  description = "The serving VM's /home/opc/commands.txt; empty when serving is disabled."
  value       = local.commands_text.serving
}

output "notebook_setup" {
  description = "Environment variables that connect a notebook or script to this MLflow server."
  value       = <<-EOT
    export MLFLOW_TRACKING_URI=${local.tracking_url}
    export MLFLOW_TRACKING_USERNAME=${var.mlflow_username}
    export MLFLOW_TRACKING_PASSWORD='<the mlflow_password you entered>'
    export MLFLOW_TRACKING_INSECURE_TLS=true
  EOT
}

output "s3_access_key_id" {
  description = "Access key ID of the Object Storage credentials the tracking VM uses (not secret; the secret key is never output)."
  value       = local.s3_access_key
}
