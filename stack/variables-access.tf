# ---------------------------------------------------------------------------------------------
# MLflow access
# ---------------------------------------------------------------------------------------------

variable "mlflow_username" {
  description = "User name for the MLflow UI/API and the serving endpoint (HTTP basic auth)."
  type        = string
  default     = "mlflow"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", var.mlflow_username))
    error_message = "The mlflow_username must be 1-32 letters, digits, dots, dashes or underscores, starting with a letter or digit."
  }

  validation {
    condition     = !contains(["mlflow-serving", "mlflow-notebook"], lower(var.mlflow_username))
    error_message = "The mlflow_username must not be mlflow-serving or mlflow-notebook: with per-person users those are the model endpoint's and the notebook session's own MLflow users."
  }
}

variable "mlflow_password" {
  description = "Password for the MLflow UI/API and the serving endpoint: 12-64 characters without spaces or quotes. Empty (the default): Vault generates one (secret <name_prefix>-mlflow-login; the output mlflow_password_command reads it)."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = var.mlflow_password == "" || (length(var.mlflow_password) >= 12 && length(var.mlflow_password) <= 64)
    error_message = "The mlflow_password must be 12 to 64 characters long, or empty to let Vault generate one."
  }

  validation {
    condition     = var.mlflow_password == "" || (!can(regex("[[:space:]\"'\\\\]", var.mlflow_password)) && can(regex("^[[:print:]]+$", var.mlflow_password)))
    error_message = "The mlflow_password must be printable characters without spaces, quotes or backslashes."
  }
}

variable "mlflow_users" {
  description = "Who logs in: \"shared\" (one login, mlflow_username, for everyone, checked by the auth proxy), \"per-person\" (MLflow's own users and permissions, kept in MySQL for every replica; mlflow_username is their first admin; add people with orm-pack users) or \"sso\" (per-person, and people sign in with the tenancy's OCI identity domain: sso_domain_url, sso_admin_group, sso_user_group)."
  type        = string
  default     = "shared"

  validation {
    condition     = contains(["shared", "per-person", "sso"], var.mlflow_users)
    error_message = "The mlflow_users must be \"shared\", \"per-person\" or \"sso\"."
  }
}

variable "sso_domain_url" {
  description = "With mlflow_users = \"sso\": the Domain URL of the identity domain people sign in with (Identity > Domains > the domain > Domain URL), https://idcs-<32 hex>.identity.oraclecloud.com. The stack registers a confidential application in it."
  type        = string
  default     = ""

  validation {
    condition     = var.sso_domain_url == "" || can(regex("^https://idcs-[0-9a-f]{32}\\.identity\\.[a-z0-9.-]+[a-z](:443)?/?$", var.sso_domain_url))
    error_message = "The sso_domain_url must be an identity domain's Domain URL, https://idcs-<32 hex characters>.identity.oraclecloud.com (shown on the domain's details page)."
  }
}

variable "sso_admin_group" {
  description = "With mlflow_users = \"sso\": the name of the identity domain group whose members are MLflow admins."
  type        = string
  default     = ""
}

variable "sso_user_group" {
  description = "With mlflow_users = \"sso\": the name of the identity domain group whose members are ordinary MLflow users (what they may do with others' work: mlflow_default_permission). People in neither group are refused."
  type        = string
  default     = ""
}

variable "mlflow_default_permission" {
  description = "With mlflow_users = \"per-person\" or \"sso\": what a new user may do with experiments and models others created: READ, EDIT or NO_PERMISSIONS (what they create, they manage)."
  type        = string
  default     = "READ"

  validation {
    condition     = contains(["READ", "EDIT", "NO_PERMISSIONS"], var.mlflow_default_permission)
    error_message = "The mlflow_default_permission must be READ, EDIT or NO_PERMISSIONS."
  }
}

variable "max_request_body_mb" {
  description = "Largest request body the auth proxy lets through to MLflow or the model, in MiB (413 beyond). MLflow reads a body before it checks the login, so this bounds what anyone can make it hold. Artifact uploads are exempt: they pass, of any size, once the login is checked."
  type        = number
  default     = 64

  validation {
    condition     = var.max_request_body_mb >= 1 && var.max_request_body_mb <= 10240 && floor(var.max_request_body_mb) == var.max_request_body_mb
    error_message = "The max_request_body_mb must be a whole number of MiB between 1 and 10240."
  }
}

