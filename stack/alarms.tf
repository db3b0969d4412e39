# Alarms on the metrics the VMs post (mlflow-metrics.timer, namespace mlflow), or on OKE the metrics pod
# (oke/base/metrics.yaml), sent to a Notifications topic and, when alarm_email is set, to that address: OCI mails it
# a confirmation link first, and nothing arrives until it is followed. Each alarm's body is its runbook. On OKE the
# proxy pods' sidecar posts the request metrics (oke/base/proxy.yaml); the disk alarm, on what only a VM posts, is
# left out there.

locals {
  oke_alarms = ["down", "silent", "errors", "database"]
  # MySQL's data is written to its storage, which the stack sizes in GB (database.tf); 80 % of it, in bytes.
  database_bytes_limit = floor(local.mysql_storage_gb * 1000000000 * 0.8)
  metric_filter        = "deployment = \"${var.name_prefix}\""
  tracking_filter      = "{${local.metric_filter}, role = \"tracking\"}"
  alarms = merge({
    down = {
      query    = "mlflow.up[1m]${local.tracking_filter}.min() < 1"
      severity = "CRITICAL"
      pending  = "PT5M"
      body     = "MLflow does not answer or cannot reach its database. Runbook: on the tracking VM, `sudo systemctl status mlflow-tracking` and `journalctl -u mlflow-tracking -n 100`; check the DB system in the console; `orm-pack doctor` tells which part fails."
    }
    silent = {
      query    = "mlflow.up[5m]${local.tracking_filter}.absent()"
      severity = "CRITICAL"
      pending  = "PT5M"
      body     = "The tracking VM has posted no metrics for 5 minutes: it is stopped, unreachable or its timer failed. Runbook: check the instance in the console; on the VM, `systemctl status mlflow-metrics.timer mlflow-metrics` and `journalctl -u mlflow-metrics -n 50`."
    }
    # The metrics pass posts a route's share of 5xx once the route had 10 requests in the minute.
    errors = {
      query    = "mlflow.server_error_percent[5m]{${local.metric_filter}}.max() > 5"
      severity = "CRITICAL"
      pending  = "PT5M"
      body     = "Over 5 % of the requests of a route (dimension route: api, ui, artifacts, serving) answered 5xx. Runbook: on the VM of the alarm's role, `journalctl -u mlflow-tracking -n 200` (or mlflow-serving) for the server's errors and `sudo tail /var/log/nginx/error.log` for the proxy's (502: the server is away); on OKE, `kubectl logs -n mlflow deployment/mlflow-tracking` and `-c nginx deployment/mlflow-proxy`; `orm-pack doctor`."
    }
    disk = {
      query    = "mlflow.disk_used_percent[5m]{${local.metric_filter}}.max() > 80"
      severity = "WARNING"
      pending  = "PT5M"
      body     = "A VM's disk (dimension role) is over 80 % full. Runbook: `sudo podman image prune -a` (old MLflow images), `sudo journalctl --vacuum-size=500M`; then consider a larger boot volume."
    }
    database = {
      query    = "mlflow.database_bytes[5m]{${local.metric_filter}}.max() > ${local.database_bytes_limit}"
      severity = "WARNING"
      pending  = "PT5M"
      body     = "MLflow's database is over 80 % of the DB system's storage. Runbook: lower deleted_runs_kept_days or trace_retention_days so housekeeping removes more, or raise mysql_data_storage_gb and apply."
    }
    }, local.serving_enabled ? {
    serving_silent = {
      query    = "mlflow.up[5m]{${local.metric_filter}, role = \"serving\"}.absent()"
      severity = "CRITICAL"
      pending  = "PT5M"
      body     = "The serving VM has posted no metrics for 5 minutes: it is stopped, unreachable or its timer failed. Runbook: check the instance in the console; on the VM, `systemctl status mlflow-metrics.timer mlflow-serving` and `journalctl -u mlflow-metrics -n 50`."
    }
    } : {}, local.serving_enabled && var.serving_model_uri == "" ? {
    # A new version takes the poll (30 s) and its model server's start (up to 10 min) to be served.
    serving_alias = {
      query    = "mlflow.serving_follows_alias[5m]{${local.metric_filter}}.max() < 1"
      severity = "WARNING"
      pending  = "PT15M"
      body     = "The model endpoint does not serve the version its alias names. Runbook: on the serving VM, `journalctl -u mlflow-serving -n 100` says why the new version did not start (download, dependencies, the model server's own error); the endpoint keeps serving the previous version meanwhile."
    }
  } : {})
  deployed_alarms = { for name, alarm in local.alarms : name => alarm if !local.oke_enabled || contains(local.oke_alarms, name) }
}

resource "oci_ons_notification_topic" "alarms" {
  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-alarms"
  description    = "Alarms of the MLflow stack ${var.name_prefix}"
  freeform_tags  = local.freeform_tags
}

resource "oci_ons_subscription" "alarm_email" {
  count = var.alarm_email != "" ? 1 : 0

  compartment_id = var.compartment_ocid
  topic_id       = oci_ons_notification_topic.alarms.id
  protocol       = "EMAIL"
  endpoint       = var.alarm_email
  freeform_tags  = local.freeform_tags
}

resource "oci_monitoring_alarm" "mlflow" {
  for_each = local.deployed_alarms

  compartment_id        = var.compartment_ocid
  metric_compartment_id = var.compartment_ocid
  display_name          = "${var.name_prefix}-${each.key}"
  namespace             = "mlflow"
  query                 = each.value.query
  severity              = each.value.severity
  body                  = each.value.body
  pending_duration      = each.value.pending
  destinations          = [oci_ons_notification_topic.alarms.id]
  is_enabled            = true
  freeform_tags         = local.freeform_tags
}
