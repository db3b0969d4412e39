# ---------------------------------------------------------------------------------------------
# Housekeeping: what is removed for good, and when
# ---------------------------------------------------------------------------------------------

variable "deleted_runs_kept_days" {
  description = "Days a deleted run or experiment stays in MLflow's trash, where the UI can restore it, before the daily housekeeping (the tracking VM's timer, or on OKE the mlflow-housekeeping CronJob) removes it with its artifacts (0: at the next pass). Runs a registered model version was made from are kept."
  type        = number
  default     = 30

  validation {
    condition     = var.deleted_runs_kept_days >= 0 && var.deleted_runs_kept_days <= 3650 && floor(var.deleted_runs_kept_days) == var.deleted_runs_kept_days
    error_message = "The deleted_runs_kept_days must be a whole number of days between 0 and 3650."
  }
}

variable "trace_retention_days" {
  description = "Days MLflow traces are kept before housekeeping removes them with their artifacts; 0 keeps them forever."
  type        = number
  default     = 0

  validation {
    condition     = var.trace_retention_days >= 0 && var.trace_retention_days <= 3650 && floor(var.trace_retention_days) == var.trace_retention_days
    error_message = "The trace_retention_days must be a whole number of days between 0 (keep) and 3650."
  }
}

variable "job_retention_days" {
  description = "Days MLflow keeps the records of finished server-side jobs before housekeeping removes them; 0 keeps them forever."
  type        = number
  default     = 30

  validation {
    condition     = var.job_retention_days >= 0 && var.job_retention_days <= 3650 && floor(var.job_retention_days) == var.job_retention_days
    error_message = "The job_retention_days must be a whole number of days between 0 (keep) and 3650."
  }
}

variable "previous_versions_kept_days" {
  description = "Days the versioned artifact bucket keeps an object's previous versions (an overwritten or deleted artifact) before Object Storage deletes them."
  type        = number
  default     = 30

  validation {
    condition     = var.previous_versions_kept_days >= 1 && var.previous_versions_kept_days <= 3650 && floor(var.previous_versions_kept_days) == var.previous_versions_kept_days
    error_message = "The previous_versions_kept_days must be a whole number of days between 1 and 3650."
  }
}

variable "unfinished_uploads_kept_days" {
  description = "Days an unfinished multipart upload to the artifact bucket (a client that stopped midway) keeps its parts before Object Storage aborts it."
  type        = number
  default     = 7

  validation {
    condition     = var.unfinished_uploads_kept_days >= 1 && var.unfinished_uploads_kept_days <= 3650 && floor(var.unfinished_uploads_kept_days) == var.unfinished_uploads_kept_days
    error_message = "The unfinished_uploads_kept_days must be a whole number of days between 1 and 3650."
  }
}

variable "log_retention_days" {
  description = "Days OCI Logging keeps the service log and the audit trail: 30 to 180, in steps of 30 (OCI's own steps). The first 10 GB a month of log storage are free."
  type        = number
  default     = 30

  validation {
    condition     = contains([30, 60, 90, 120, 150, 180], var.log_retention_days)
    error_message = "The log_retention_days must be 30, 60, 90, 120, 150 or 180 (OCI Logging keeps logs in steps of 30 days)."
  }
}

variable "alarm_email" {
  description = "E-mail address the stack's alarms (MLflow down or silent, 5xx, disk or database over 80 %, the model endpoint behind its alias) are sent to. OCI first mails a confirmation link: nothing arrives until it is followed. Empty: the alarms only show in the console."
  type        = string
  default     = ""

  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "The alarm_email must be one e-mail address (name@example.com), or empty."
  }
}

variable "create_dashboard" {
  description = "Import a Management Dashboard of the deployment's metrics (Observability & Management > Dashboards). The user who applies needs manage management-dashboard-family in the compartment; its viewers read management-dashboard-family and read metrics. Terraform cannot delete it: orm-pack destroy does."
  type        = bool
  default     = true
}
