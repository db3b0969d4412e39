# OCI Logging: a log group with two custom logs that the VMs fill themselves (mlflow-ship-logs, every minute:
# the journal through Logging ingestion's PutLogs with the VM's instance principal; Oracle Cloud Agent's
# custom-log plugin needs the agent's own configuration service, which this stack does not manage):
#   service  the first boot, the tracking and serving containers, nginx and the timers
#   audit    a JSON line for every write through MLflow's API: who (and, with single sign-on, the provider's
#            subject), what, which experiment, run, model or alias, when and from where (docker/lib/mlflow_oci/audit.py)
# On OKE the worker nodes' Oracle Cloud Agent (its Custom Logs Monitoring plugin, on by default on OKE's Oracle
# Linux images) tails the containers of the MLflow namespace, as an agent configuration of the nodes' dynamic group
# tells it: their output, the audit trail's lines among the tracking pods', goes to the service log. That needs the
# dynamic group's OCID: with create_iam_policies = false there is no agent configuration (the output says so).

resource "oci_logging_log_group" "mlflow" {
  count = 1

  compartment_id = var.compartment_ocid
  display_name   = "${var.name_prefix}-logs"
  description    = "Logs of the MLflow stack ${var.name_prefix}: its services, and the audit trail of every write through MLflow's API"
  freeform_tags  = local.freeform_tags
}

resource "oci_logging_log" "mlflow" {
  for_each = toset(local.oke_enabled ? ["service"] : ["service", "audit"])

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

resource "oci_logging_unified_agent_configuration" "oke_pods" {
  count = local.oke_enabled && var.create_iam_policies ? 1 : 0

  compartment_id = var.compartment_ocid
  display_name   = "${var.name_prefix}-oke-pods"
  description    = "The containers of the MLflow stack ${var.name_prefix}'s pods (namespace ${local.oke_namespace}) into its service log"
  is_enabled     = true
  freeform_tags  = local.freeform_tags

  service_configuration {
    configuration_type = "LOGGING"
    destination {
      log_object_id = oci_logging_log.mlflow["service"].id
    }
    sources {
      source_type = "LOG_TAIL"
      name        = "mlflow_pods"
      # the kubelet's links to each container's log: <pod>_<namespace>_<container>-<id>.log, in CRI's format
      paths = ["/var/log/containers/*_${local.oke_namespace}_*.log"]
      parser {
        parser_type = "CRI"
      }
    }
  }

  group_association {
    group_list = [oci_identity_dynamic_group.vm["workers"].id]
  }
}
