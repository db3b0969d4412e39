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
  # Every widget the stack knows: the statistic of mlflow.<metric> over each interval, one line a value of `by`.
  # feeds: who posts it; any, a VM's metrics pass only (disk, memory and restarts: on OKE a pod's disk is its node's,
  # and Kubernetes reports memory and restarts), or the serving VM only.
  dashboard_catalog = [
    { key = "up", title = "MLflow answers (1) or not (0)", unit = "up", metric = "up", interval = "1m", by = "role", statistic = "min", feeds = "any" },
    { key = "requests", title = "Requests a minute, by status class", unit = "requests", metric = "requests", interval = "1m", by = "status", statistic = "sum", feeds = "any" },
    { key = "latency", title = "Latency p95 (ms), by route", unit = "ms", metric = "latency_p95_ms", interval = "1m", by = "route", statistic = "max", feeds = "any" },
    { key = "errors", title = "Share of 5xx answers (%), by route", unit = "%", metric = "server_error_percent", interval = "1m", by = "route", statistic = "max", feeds = "any" },
    { key = "login_failures", title = "Refused logins a minute", unit = "logins", metric = "login_failures", interval = "1m", by = "role", statistic = "sum", feeds = "any" },
    { key = "login_throttled", title = "Throttled logins a minute", unit = "logins", metric = "login_throttled", interval = "1m", by = "role", statistic = "sum", feeds = "any" },
    { key = "runs", title = "Active runs", unit = "runs", metric = "runs", interval = "5m", by = "role", statistic = "max", feeds = "any" },
    { key = "experiments", title = "Active experiments", unit = "experiments", metric = "experiments", interval = "5m", by = "role", statistic = "max", feeds = "any" },
    { key = "model_versions", title = "Model versions", unit = "versions", metric = "model_versions", interval = "5m", by = "role", statistic = "max", feeds = "any" },
    { key = "database", title = "Database size (bytes)", unit = "bytes", metric = "database_bytes", interval = "5m", by = "role", statistic = "max", feeds = "any" },
    { key = "disk", title = "Disk used (%), by VM", unit = "%", metric = "disk_used_percent", interval = "5m", by = "role", statistic = "max", feeds = "vm" },
    { key = "memory", title = "Memory (bytes), by process", unit = "bytes", metric = "memory_bytes", interval = "1m", by = "process", statistic = "max", feeds = "vm" },
    { key = "restarts", title = "Restarts since boot, by process", unit = "restarts", metric = "restarts", interval = "5m", by = "process", statistic = "max", feeds = "vm" },
    { key = "served_version", title = "Served model version", unit = "version", metric = "served_model_version", interval = "5m", by = "role", statistic = "max", feeds = "serving" },
  ]
  dashboard_widgets = [
    for widget in local.dashboard_catalog : merge(widget, {
      query = "mlflow.${widget.metric}[${widget.interval}]{${local.metric_filter}}.groupBy(${widget.by}).${widget.statistic}()"
    })
    if var.create_dashboard && (widget.feeds != "vm" || !local.oke_enabled) && (widget.feeds != "serving" || local.serving_enabled)
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
