# OCI Logging: a log group with two custom logs that the VMs fill themselves (mlflow-ship-logs, every minute:
# the journal through Logging ingestion's PutLogs with the VM's instance principal; Oracle Cloud Agent's
# custom-log plugin needs the agent's own configuration service, which this stack does not manage):
#   service  the first boot, the tracking and serving containers, nginx and the timers
#   audit    a JSON line for every write through MLflow's API: who (and, with single sign-on, the provider's
#            subject), what, which experiment, run, model or alias, when and from where (docker/lib/mlflow_oci/audit.py)
# On OKE nothing ships them yet: the stack makes them for the VMs only.

resource "oci_logging_log_group" "mlflow" {
  count = local.oke_enabled ? 0 : 1

  compartment_id = var.compartment_ocid
  display_name   = "${var.name_prefix}-logs"
  description    = "Logs of the MLflow stack ${var.name_prefix}: its services, and the audit trail of every write through MLflow's API"
  freeform_tags  = local.freeform_tags
}

resource "oci_logging_log" "mlflow" {
  for_each = local.oke_enabled ? toset([]) : toset(["service", "audit"])

  display_name       = "${var.name_prefix}-${each.key}"
  log_group_id       = oci_logging_log_group.mlflow[0].id
  log_type           = "CUSTOM"
  is_enabled         = true
  retention_duration = var.log_retention_days
  freeform_tags      = local.freeform_tags
}

locals {
  log_group_id = one(oci_logging_log_group.mlflow[*].id)
  # What each VM's shipper reads (/etc/mlflow/logs.env): where its journal goes. The serving VM has no audit trail
  # of its own (its writes are the tracking server's), so its audit setting names the service log.
  log_settings = {
    tracking = { MLFLOW_LOG_OCID = try(oci_logging_log.mlflow["service"].id, ""), MLFLOW_AUDIT_LOG_OCID = try(oci_logging_log.mlflow["audit"].id, "") }
    serving  = { MLFLOW_LOG_OCID = try(oci_logging_log.mlflow["service"].id, ""), MLFLOW_AUDIT_LOG_OCID = try(oci_logging_log.mlflow["service"].id, "") }
  }
}
