# ---------------------------------------------------------------------------------------------
# MySQL HeatWave
# ---------------------------------------------------------------------------------------------

variable "mysql_shape" {
  description = "MySQL HeatWave shape. MySQL.Free is the Always Free shape (one per tenancy, 50 GB storage)."
  type        = string
  default     = "MySQL.2"

  validation {
    condition     = contains(["MySQL.Free", "MySQL.2", "MySQL.4", "MySQL.8", "MySQL.16", "MySQL.32", "MySQL.48", "MySQL.64"], var.mysql_shape)
    error_message = "The mysql_shape must be one of MySQL.Free (Always Free), MySQL.2, MySQL.4, MySQL.8, MySQL.16, MySQL.32, MySQL.48 or MySQL.64."
  }
}

variable "mysql_data_storage_gb" {
  description = "Initial data storage of the MySQL DB system in GB (50-65536). The Always Free shape always uses 50."
  type        = number
  default     = 50

  validation {
    condition     = var.mysql_data_storage_gb >= 50 && var.mysql_data_storage_gb <= 65536 && floor(var.mysql_data_storage_gb) == var.mysql_data_storage_gb
    error_message = "The mysql_data_storage_gb must be a whole number of GB between 50 and 65536."
  }
}

variable "mysql_backup_retention_days" {
  description = "How many days automatic MySQL backups are kept (1-35)."
  type        = number
  default     = 7

  validation {
    condition     = var.mysql_backup_retention_days >= 1 && var.mysql_backup_retention_days <= 35 && floor(var.mysql_backup_retention_days) == var.mysql_backup_retention_days
    error_message = "The mysql_backup_retention_days must be a whole number between 1 and 35."
  }
}

variable "mysql_deletion_protection" {
  description = "Protect the MySQL DB system against deletion. When true, destroying the stack fails until you turn it off again."
  type        = bool
  default     = false
}

variable "mysql_keep_backups_on_delete" {
  description = "When the DB system is deleted (destroying the stack): true keeps a final backup and the automatic backups (they are billed as backup storage until you delete them); false deletes them with the DB system."
  type        = bool
  default     = true
}

variable "mysql_admin_username" {
  description = "Administrator user of the MySQL DB system: 1-32 letters, digits or underscores, starting with a letter; not a reserved MySQL/OCI name."
  type        = string
  default     = "mlflowadmin"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,31}$", var.mysql_admin_username))
    error_message = "The mysql_admin_username must be 1-32 characters: letters, digits or underscores, starting with a letter."
  }

  validation {
    condition     = !contains(["administrator", "ociadmin", "ocirpl", "ocidbm", "ocimonitor", "mysql.sys", "mysql.session", "mysql.infoschema", "mysql.rpl", "root", "mysql"], lower(var.mysql_admin_username))
    error_message = "The mysql_admin_username is a name MySQL HeatWave reserves (administrator, ociadmin, ocirpl, ocidbm, ocimonitor, root, mysql, mysql.*): choose another, e.g. mlflowadmin."
  }
}

variable "mysql_admin_password" {
  description = "Password of the MySQL administrator: 8-32 characters with an uppercase letter, a lowercase letter, a digit and a special character; no spaces or quotes."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.mysql_admin_password) >= 8 && length(var.mysql_admin_password) <= 32
    error_message = "The mysql_admin_password must be 8 to 32 characters long."
  }

  validation {
    condition     = can(regex("[A-Z]", var.mysql_admin_password)) && can(regex("[a-z]", var.mysql_admin_password))
    error_message = "The mysql_admin_password needs at least one uppercase and one lowercase letter."
  }

  validation {
    condition     = can(regex("[0-9]", var.mysql_admin_password))
    error_message = "The mysql_admin_password needs at least one digit."
  }

  validation {
    condition     = can(regex("[^A-Za-z0-9]", var.mysql_admin_password))
    error_message = "The mysql_admin_password needs at least one special character (not a letter or digit), e.g. - _ ! @ # %."
  }

  validation {
    condition     = !can(regex("[[:space:]\"'\\\\]", var.mysql_admin_password))
    error_message = "The mysql_admin_password must not contain spaces, quotes or backslashes."
  }
}

variable "mlflow_db_name" {
  description = "Name of the MLflow database that the tracking VM creates at first boot."
  type        = string
  default     = "mlflow"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,31}$", var.mlflow_db_name))
    error_message = "The mlflow_db_name must be 1-32 letters, digits or underscores, starting with a letter."
  }
}

variable "mlflow_db_user" {
  description = "MySQL user that MLflow connects with; the tracking VM creates it at first boot and grants it the MLflow database only. Vault generates its password (secret <name_prefix>-mlflow-db): nobody types it and Terraform never sees it."
  type        = string
  default     = "mlflow"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,31}$", var.mlflow_db_user))
    error_message = "The mlflow_db_user must be 1-32 letters, digits or underscores, starting with a letter."
  }
}

