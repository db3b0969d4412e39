# A Management Dashboard ("Observability & Management > Dashboards") of the metrics the deployment posts (namespace
# mlflow, see alarms.tf): one query-based widget a question, each a Monitoring query (MQL) charted by its dimension.
#
# The pinned provider's only way to make one is oci_management_dashboard_management_dashboards_import: it sends
# ImportDashboard, which creates or updates the dashboard and the saved searches whose OCIDs the JSON names. Its
# Read and Delete do nothing, so Terraform never sees a change made in the console, and a destroy leaves the
# dashboard: `orm-pack destroy` deletes it afterwards (the outputs dashboard_id and dashboard_saved_search_ids),
# and the README says how to after a destroy from the console.
#
# The OCIDs are ours to choose. They are derived from the alarm topic's OCID, which is unique to this deployment
# and stable across applies, so a re-apply updates the same dashboard instead of adding one; the hex of sha256 is
# mapped into base32's alphabet (0, 1, 8, 9 are not in it) to look like the OCIDs the service mints.

locals {
  dashboard_filter = "{${local.metric_filter}}"
  # Every widget the stack knows; vm: posted only by a VM's metrics pass (disk, memory and restarts: on OKE a pod's
  # disk is its node's, and Kubernetes reports memory and restarts); serving: posted only by the serving VM.
  dashboard_catalog = [
    { key = "up", title = "MLflow answers (1) or not (0)", unit = "up", by = "role", vm = false, serving = false,
    query = "mlflow.up[1m]${local.dashboard_filter}.groupBy(role).min()" },
    { key = "requests", title = "Requests a minute, by status class", unit = "requests", by = "status", vm = false, serving = false,
    query = "mlflow.requests[1m]${local.dashboard_filter}.groupBy(status).sum()" },
    { key = "latency", title = "Latency p95 (ms), by route", unit = "ms", by = "route", vm = false, serving = false,
    query = "mlflow.latency_p95_ms[1m]${local.dashboard_filter}.groupBy(route).max()" },
    { key = "errors", title = "Share of 5xx answers (%), by route", unit = "%", by = "route", vm = false, serving = false,
    query = "mlflow.server_error_percent[1m]${local.dashboard_filter}.groupBy(route).max()" },
    { key = "login_failures", title = "Refused logins a minute", unit = "logins", by = "role", vm = false, serving = false,
    query = "mlflow.login_failures[1m]${local.dashboard_filter}.groupBy(role).sum()" },
    { key = "login_throttled", title = "Throttled logins a minute", unit = "logins", by = "role", vm = false, serving = false,
    query = "mlflow.login_throttled[1m]${local.dashboard_filter}.groupBy(role).sum()" },
    { key = "runs", title = "Active runs", unit = "runs", by = "role", vm = false, serving = false,
    query = "mlflow.runs[5m]${local.dashboard_filter}.groupBy(role).max()" },
    { key = "experiments", title = "Active experiments", unit = "experiments", by = "role", vm = false, serving = false,
    query = "mlflow.experiments[5m]${local.dashboard_filter}.groupBy(role).max()" },
    { key = "model_versions", title = "Model versions", unit = "versions", by = "role", vm = false, serving = false,
    query = "mlflow.model_versions[5m]${local.dashboard_filter}.groupBy(role).max()" },
    { key = "database", title = "Database size (bytes)", unit = "bytes", by = "role", vm = false, serving = false,
    query = "mlflow.database_bytes[5m]${local.dashboard_filter}.groupBy(role).max()" },
    { key = "disk", title = "Disk used (%), by VM", unit = "%", by = "role", vm = true, serving = false,
    query = "mlflow.disk_used_percent[5m]${local.dashboard_filter}.groupBy(role).max()" },
    { key = "memory", title = "Memory (bytes), by process", unit = "bytes", by = "process", vm = true, serving = false,
    query = "mlflow.memory_bytes[1m]${local.dashboard_filter}.groupBy(process).max()" },
    { key = "restarts", title = "Restarts since boot, by process", unit = "restarts", by = "process", vm = true, serving = false,
    query = "mlflow.restarts[5m]${local.dashboard_filter}.groupBy(process).max()" },
    { key = "served_version", title = "Served model version", unit = "version", by = "role", vm = true, serving = true,
    query = "mlflow.served_model_version[5m]${local.dashboard_filter}.groupBy(role).max()" },
  ]
  dashboard_widgets = [
    for widget in local.dashboard_catalog : widget
    if var.create_dashboard && (!widget.vm || !local.oke_enabled) && (!widget.serving || local.serving_enabled)
  ]

  dashboard_seed = oci_ons_notification_topic.alarms.id
  dashboard_unique = {
    for name in concat(["dashboard"], [for widget in local.dashboard_widgets : widget.key]) :
    name => replace(replace(replace(replace(substr(sha256("${local.dashboard_seed}/${name}"), 0, 52), "0", "s"), "1", "t"), "8", "u"), "9", "v")
  }
  dashboard_id       = "ocid1.managementdashboard.oc1..aaaaaaaa${local.dashboard_unique["dashboard"]}"
  dashboard_searches = { for widget in local.dashboard_widgets : widget.key => "ocid1.managementsavedsearch.oc1..aaaaaaaa${local.dashboard_unique[widget.key]}" }

  # Field names and required fields: the Management Dashboard API's ManagementDashboardImportDetails,
  # ManagementDashboardForImportExportDetails, ManagementSavedSearchForImportDetails and ManagementDashboardTileDetails.
  # The widget's inside (uiConfig, dataConfig) is what the console writes for a query-based widget on Monitoring.
  dashboard_provider = { providerId = "management-dashboard", providerName = "Management Dashboard", providerVersion = "3.0.0" }
  dashboard_time     = { name = "time", displayName = "Time", required = true, defaultFilterIds = ["OOBSS-management-dashboard-time-selector-filter"], editUi = { inputType = "savedSearch", filterTile = { filterId = "OOBSS-management-dashboard-time-selector-filter" } } }
  dashboard_saved_searches = [
    for widget in local.dashboard_widgets : merge(local.dashboard_provider, {
      id               = local.dashboard_searches[widget.key]
      displayName      = "${var.name_prefix}: ${widget.title}"
      compartmentId    = var.compartment_ocid
      isOobSavedSearch = false
      description      = widget.query
      nls              = {}
      type             = "WIDGET_SHOW_IN_DASHBOARD"
      uiConfig = {
        vizType           = "chart"
        defaultDataSource = widget.key
        chartInfo = {
          jetConfig = { type = "line", timeAxisType = "enabled", dataCursor = "on", legend = { rendered = true, position = "top" }, yAxis = { title = widget.unit }, xAxis = { viewportMin = "$(params.time.start)", viewportMax = "$(params.time.end)" } }
          value     = "aggregatedDatapoints.value"
          group     = "aggregatedDatapoints.timestamp"
          series    = "dimensions.${widget.by}"
          colorBy   = "dimensions.${widget.by}"
        }
      }
      dataConfig = [{
        name = widget.key
        type = "monitoringDataSource"
        parameters = {
          compartmentId = var.compartment_ocid
          regionName    = var.region
          namespace     = "mlflow"
          mql           = widget.query
          startTime     = "$(params.time.start)"
          endTime       = "$(params.time.end)"
        }
      }]
      screenImage      = " "
      metadataVersion  = "2.0"
      widgetTemplate   = "visualizations/chartWidgetTemplate.html"
      widgetVM         = "visualizations/chartWidget"
      freeformTags     = local.freeform_tags
      definedTags      = {}
      parametersConfig = [local.dashboard_time]
      featuresConfig   = { crossService = { shared = true }, serviceTypes = ["management-dashboard"] }
      drilldownConfig  = []
    })
  ]
  dashboard_import = {
    dashboards = [merge(local.dashboard_provider, {
      dashboardId = local.dashboard_id
      # two widgets a row on the dashboard's 12 columns
      tiles = [
        for index, widget in local.dashboard_widgets : {
          displayName     = widget.title
          savedSearchId   = local.dashboard_searches[widget.key]
          row             = floor(index / 2) * 4
          column          = (index % 2) * 6
          height          = 4
          width           = 6
          nls             = {}
          uiConfig        = {}
          dataConfig      = []
          state           = "DEFAULT"
          drilldownConfig = []
          parametersMap   = { time = "$(dashboard.params.time)" }
        }
      ]
      displayName       = "${var.name_prefix} MLflow"
      description       = "What the MLflow deployment ${var.name_prefix} posts to Monitoring (namespace mlflow, deployment = ${var.name_prefix}); its alarms are ${var.name_prefix}-*."
      compartmentId     = var.compartment_ocid
      isOobDashboard    = false
      isShowInHome      = true
      metadataVersion   = "2.0"
      isShowDescription = true
      screenImage       = " "
      nls               = {}
      uiConfig          = { isFilteringEnabled = false, isRefreshEnabled = true, isTimeRangeEnabled = true }
      dataConfig        = []
      type              = "NORMAL"
      isFavorite        = false
      savedSearches     = local.dashboard_saved_searches
      parametersConfig  = [{ name = "time", displayName = "Time", src = "$(context.time)" }]
      featuresConfig    = { crossService = { shared = true }, serviceTypes = ["management-dashboard"] }
      drilldownConfig   = []
      freeformTags      = local.freeform_tags
      definedTags       = {}
    })]
  }
}

resource "oci_management_dashboard_management_dashboards_import" "mlflow" {
  count = var.create_dashboard ? 1 : 0

  import_details = jsonencode(local.dashboard_import)
}
