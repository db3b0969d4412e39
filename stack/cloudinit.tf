# cloud-init user_data of the VMs: the bootstrap script and its systemd unit, mlflow-refresh-login, the
# container unit, the settings as env files and commands.txt, rendered from userdata/ and sent
# gzip+base64 (OCI keeps all of an instance's metadata under 32,000 bytes; tests keep user_data under
# 28 KiB). The role's docker/ files are not in it: they come from the runtime bucket at first boot
# (runtime.tf), checked against the SHA-256 that /etc/mlflow/runtime.env carries with their URL.
#
# The VMs do not know their public address at boot (see public_ips.tf), so:
#   * MLflow accepts any Host header (MLFLOW_ALLOWED_HOSTS=*). MLflow listens on 127.0.0.1 only
#     and nginx in front demands the password on every path but /health; the Host check guards
#     unauthenticated servers against DNS rebinding, which basic auth already stops here.
#   * the TLS certificate comes from the stack's private CA (tls.tf), which names the reserved public IP;
#     the VM reads it with its instance principal (mlflow-refresh-tls), its OCID from a Vault secret by
#     name. Without those settings (local runs) tls-self-signed.sh makes a pair naming localhost.
#   * the copy of commands.txt on each VM points at the stack outputs for its URL; the outputs
#     commands_tracking / commands_serving carry the same text with the URL filled in.

locals {
  # With deployment_target = "oke" the URL is the reserved address of the load balancer Kubernetes creates.
  tracking_address = local.oke_enabled ? oci_core_public_ip.oke_lb[0].ip_address : oci_core_public_ip.vm["tracking"].ip_address
  tracking_url     = "https://${local.tracking_address}"
  serving_url      = local.serving_enabled ? "https://${oci_core_public_ip.vm["serving"].ip_address}:${local.serving_port}" : ""

  # The serving VM reaches the tracking server inside the VCN, at the address the tracking VM is
  # created with (so the serving VM's settings do not wait for the tracking VM).
  tracking_internal_uri = "https://${local.tracking_private_ip}"

  serving_model = var.serving_model_uri != "" ? var.serving_model_uri : "models:/${var.serving_model_name}@${var.serving_model_alias}"

  proxy_settings = {
    tracking = {
      PROXY_LISTEN_PORT   = tostring(local.tracking_port)
      PROXY_UPSTREAM      = "127.0.0.1:5000"
      PROXY_HTPASSWD_FILE = "/etc/nginx/mlflow/htpasswd"
      PROXY_TLS_CERT      = "/etc/pki/nginx/mlflow-tracking.crt"
      PROXY_TLS_KEY       = "/etc/pki/nginx/private/mlflow-tracking.key"
      PROXY_SERVER_NAME   = "_"
      PROXY_MAX_BODY_MB   = tostring(var.max_request_body_mb)
      # per-person: MLflow checks logins itself; the proxy passes them on.
      PROXY_AUTH   = local.per_person_users ? "upstream" : "proxy"
      MLFLOW_IMAGE = "localhost/mlflow-tracking:latest"
      # One JSON line a request, read by the metrics pass (mlflow-metrics; nginx's logrotate rotates it).
      PROXY_REQUEST_LOG = "/var/log/nginx/mlflow-requests.log"
    }
    serving = {
      PROXY_LISTEN_PORT   = tostring(local.serving_port)
      PROXY_UPSTREAM      = "127.0.0.1:8080"
      PROXY_HTPASSWD_FILE = "/etc/nginx/mlflow/htpasswd"
      PROXY_TLS_CERT      = "/etc/pki/nginx/mlflow-serving.crt"
      PROXY_TLS_KEY       = "/etc/pki/nginx/private/mlflow-serving.key"
      PROXY_SERVER_NAME   = "_"
      PROXY_FRONTS        = "serving"
      PROXY_MAX_BODY_MB   = tostring(var.max_request_body_mb)
      # per-person: the tracking server says who may call the model (any of MLflow's users).
      PROXY_AUTH     = local.per_person_users ? "tracking" : "proxy"
      PROXY_AUTH_URL = local.tracking_internal_uri
      MLFLOW_IMAGE   = "localhost/mlflow-serving:latest"
      # One JSON line a request, read by the metrics pass (mlflow-metrics; nginx's logrotate rotates it).
      PROXY_REQUEST_LOG = "/var/log/nginx/mlflow-requests.log"
    }
  }
  # The proxy's one login (PROXY_AUTH=proxy: mlflow-refresh-login writes its password file). The serving
  # proxy asks the tracking server with per-person users and keeps no password, so the VM needs no login
  # but its own (serving_settings).
  # The VM's certificate from the private CA (tls.tf): mlflow-refresh-tls reads its OCID from the Vault
  # secret named here, installs it at PROXY_TLS_CERT / PROXY_TLS_KEY and the CA's at PROXY_TLS_CA_FILE.
  proxy_tls = {
    for role in keys(local.vm_shapes) : role => {
      PROXY_TLS_CERTIFICATE_OCID_SECRET_NAME = local.tls_certificate_secret_names[role]
      PROXY_TLS_CA_OCID                      = local.tls_ca_id
      PROXY_TLS_CA_FILE                      = local.tls_ca_file
      MLFLOW_VAULT_OCID                      = local.vault_id
    }
  }
  # The serving proxy verifies the tracking server it asks (PROXY_AUTH=tracking) with the CA, by the
  # private IP the tracking certificate names.
  proxy_auth_tls = local.serving_enabled && local.per_person_users ? {
    PROXY_AUTH_TLS_CA   = local.tls_ca_file
    PROXY_AUTH_TLS_NAME = local.tracking_private_ip
  } : {}
  proxy_logins = {
    tracking = { MLFLOW_UI_USER = var.mlflow_username, MLFLOW_UI_PASSWORD_SECRET_OCID = local.secret_ids["mlflow-login"] }
    serving  = local.per_person_users ? {} : { MLFLOW_UI_USER = var.mlflow_username, MLFLOW_UI_PASSWORD_SECRET_OCID = local.secret_ids["mlflow-login"] }
  }

  # Settings name Vault secrets (<NAME>_SECRET_OCID), never values: the entrypoints resolve them
  # through the instance principal at start (docker/lib/mlflow_oci/secrets.py).
  tracking_settings = merge(
    {
      MLFLOW_DB_HOST         = local.mysql_private_ip
      MLFLOW_DB_PORT         = "3306"
      MLFLOW_DB_WAIT_SECONDS = "1800" # the VM boots while the DB system is still being created
      # MySQL's certificate is verified with the stack CA's, mounted read-only (container.service.tftpl)
      MLFLOW_DB_SSL_CA                 = "/opt/mlflow/tls/mlflow-ca.pem"
      MLFLOW_DB_NAME                   = var.mlflow_db_name
      MLFLOW_DB_USER                   = var.mlflow_db_user
      MLFLOW_DB_PASSWORD_SECRET_OCID   = local.secret_ids["mlflow-db"]
      MYSQL_ADMIN_USER                 = var.mysql_admin_username
      MYSQL_ADMIN_PASSWORD_SECRET_OCID = local.secret_ids["mysql-admin"]
      MLFLOW_OCI_AUTH                  = "instance_principal"
      MLFLOW_ARTIFACTS_DESTINATION     = local.artifacts_destination
      MLFLOW_HOST                      = "127.0.0.1"
      MLFLOW_PORT                      = "5000"
      MLFLOW_WORKERS                   = tostring(local.mlflow_workers)
      MLFLOW_ALLOWED_HOSTS             = "*"
      # Read by housekeeping only (mlflow-housekeeping.timer)
      MLFLOW_DELETED_RUNS_KEPT_DAYS = tostring(var.deleted_runs_kept_days)
      MLFLOW_TRACE_RETENTION_DAYS   = tostring(var.trace_retention_days)
      MLFLOW_JOB_RETENTION_DAYS     = tostring(var.job_retention_days)
      # Read by the metrics pass only (mlflow-metrics.timer): where and as what they are posted
      MLFLOW_METRICS_COMPARTMENT_OCID = var.compartment_ocid
      MLFLOW_METRICS_DEPLOYMENT       = var.name_prefix
    },
    var.artifact_store == "s3" ? {
      MLFLOW_S3_ENDPOINT_URL            = local.s3_endpoint
      AWS_ACCESS_KEY_ID                 = local.s3_access_key
      AWS_SECRET_ACCESS_KEY_SECRET_OCID = local.secret_ids["s3-secret-key"]
      AWS_DEFAULT_REGION                = var.region
    } : {},
    # MLflow's own users (its basic-auth app, users in MySQL): the stack's login is the first admin.
    local.per_person_users ? {
      MLFLOW_AUTH                                = local.sso_enabled ? "oidc" : "mlflow"
      MLFLOW_AUTH_ADMIN_USERNAME                 = var.mlflow_username
      MLFLOW_AUTH_ADMIN_PASSWORD_SECRET_OCID     = local.secret_ids["mlflow-login"]
      MLFLOW_AUTH_DEFAULT_PERMISSION             = var.mlflow_default_permission
      MLFLOW_FLASK_SERVER_SECRET_KEY_SECRET_OCID = local.secret_ids["mlflow-session-key"]
    } : {},
    # ...and the model endpoint's registered model exists before anyone can claim it (served_model.py).
    local.per_person_users && local.serving_enabled && var.serving_model_uri == "" ? {
      MLFLOW_SERVED_MODEL_NAME = var.serving_model_name
    } : {},
    # ...and the model endpoint and the notebook session log in as MLflow users of their own, which the
    # tracking server creates (service_users.py; the endpoint's may read the served model). With the
    # shared login both use that login and the proxies guard everything: nothing here.
    local.per_person_users && local.serving_enabled ? {
      MLFLOW_SERVING_USERNAME             = local.serving_username
      MLFLOW_SERVING_PASSWORD_SECRET_OCID = local.secret_ids["serving-login"]
    } : {},
    local.per_person_users && local.notebook_enabled ? {
      MLFLOW_NOTEBOOK_USERNAME             = local.notebook_username
      MLFLOW_NOTEBOOK_PASSWORD_SECRET_OCID = local.secret_ids["notebook-login"]
    } : {},
    # Single sign-on (sso.tf): the application's credentials by name, since they exist only after this VM.
    local.sso_enabled ? {
      MLFLOW_OIDC_ISSUER                    = local.sso_domain_url
      MLFLOW_OIDC_ADMIN_GROUP               = var.sso_admin_group
      MLFLOW_OIDC_USER_GROUP                = var.sso_user_group
      MLFLOW_VAULT_OCID                     = local.vault_id
      MLFLOW_OIDC_CLIENT_ID_SECRET_NAME     = local.sso_secret_names.client_id
      MLFLOW_OIDC_CLIENT_SECRET_SECRET_NAME = local.sso_secret_names.client_secret
    } : {},
  )
  # The model endpoint's login: its own MLflow user with per-person users, the shared login otherwise (vault.tf).
  serving_settings = {
    MLFLOW_TRACKING_URI                  = local.tracking_internal_uri
    MLFLOW_TRACKING_USERNAME             = local.serving_login.username
    MLFLOW_TRACKING_PASSWORD_SECRET_OCID = local.serving_login.secret
    MLFLOW_TRACKING_SERVER_CERT_PATH     = "/opt/mlflow/tls/mlflow-ca.pem" # the CA's, mounted read-only (container.service.tftpl)
    MLFLOW_OCI_AUTH                      = "instance_principal"
    SERVING_MODEL_NAME                   = var.serving_model_name
    SERVING_MODEL_ALIAS                  = var.serving_model_alias
    SERVING_MODEL_URI                    = var.serving_model_uri
    SERVING_HOST                         = "127.0.0.1"
    SERVING_PORT                         = "8080"
    SERVING_POLL_SECONDS                 = "30"
    # Read by the metrics pass only (mlflow-metrics.timer): where and as what they are posted
    MLFLOW_METRICS_COMPARTMENT_OCID = var.compartment_ocid
    MLFLOW_METRICS_DEPLOYMENT       = var.name_prefix
  }


  commands_tracking = {
    name_prefix     = var.name_prefix
    mlflow_version  = var.mlflow_version
    mlflow_versions = join(", ", local.mlflow_versions)
    per_person      = local.per_person_users
    serving_user    = local.serving_username
    notebook_user   = local.notebook_username
    username        = var.mlflow_username
    login_secret    = local.secret_ids["mlflow-login"]
    ca_command      = local.tls_ca_command
    db_host         = local.mysql_private_ip
    db_name         = var.mlflow_db_name
    db_user         = var.mlflow_db_user
    artifacts = (var.artifact_store == "oci"
      ? "${local.artifacts_destination} (Object Storage through this VM's instance principal; no key)"
    : "${local.artifacts_destination} through ${local.s3_endpoint} (customer secret key from Vault)")
  }
  commands_serving = {
    name_prefix  = var.name_prefix
    per_person   = local.per_person_users
    username     = local.serving_login.username
    login_secret = local.serving_login.secret
    model        = local.serving_model
    model_name   = var.serving_model_name
    alias        = var.serving_model_alias
    tracking_uri = local.tracking_internal_uri
    ca_command   = local.tls_ca_command
  }
  commands_text = {
    tracking = local.oke_enabled ? "" : templatefile("${local.userdata_dir}/commands-tracking.txt.tftpl", merge(local.commands_tracking, { mlflow_url = local.tracking_url }))
    serving  = local.serving_enabled ? templatefile("${local.userdata_dir}/commands-serving.txt.tftpl", merge(local.commands_serving, { serving_url = local.serving_url })) : ""
  }

  # Files that depend on the inputs only (the same for every boot of a role).
  static_files = {
    for role in keys(local.vm_shapes) : role => concat([
      {
        path    = "/usr/local/sbin/mlflow-bootstrap.sh"
        mode    = "0755"
        content = file("${local.userdata_dir}/mlflow-bootstrap.sh")
      },
      {
        path    = "/etc/systemd/system/mlflow-bootstrap@.service"
        mode    = "0644"
        content = file("${local.userdata_dir}/mlflow-bootstrap@.service")
      },
      {
        path    = "/usr/local/sbin/mlflow-refresh-login"
        mode    = "0755"
        content = file("${local.userdata_dir}/mlflow-refresh-login.sh")
      },
      {
        path    = "/usr/local/sbin/mlflow-refresh-tls"
        mode    = "0755"
        content = file("${local.userdata_dir}/mlflow-refresh-tls.sh")
      },
      {
        path    = "/etc/systemd/system/mlflow-refresh-tls.service"
        mode    = "0644"
        content = file("${local.userdata_dir}/mlflow-refresh-tls.service")
      },
      {
        path    = "/etc/systemd/system/mlflow-refresh-tls.timer"
        mode    = "0644"
        content = file("${local.userdata_dir}/mlflow-refresh-tls.timer")
      },
      # The journal to OCI Logging (logging.tf), every minute.
      {
        path    = "/usr/local/sbin/mlflow-ship-logs"
        mode    = "0755"
        content = file("${local.userdata_dir}/mlflow-ship-logs.sh")
      },
      {
        path    = "/etc/systemd/system/mlflow-ship-logs.service"
        mode    = "0644"
        content = file("${local.userdata_dir}/mlflow-ship-logs.service")
      },
      {
        path    = "/etc/systemd/system/mlflow-ship-logs.timer"
        mode    = "0644"
        content = file("${local.userdata_dir}/mlflow-ship-logs.timer")
      },
      # The VM's metrics to OCI Monitoring (the role's image), every minute.
      {
        path    = "/usr/local/sbin/mlflow-metrics"
        mode    = "0755"
        content = file("${local.userdata_dir}/mlflow-metrics.sh")
      },
      {
        path    = "/etc/systemd/system/mlflow-metrics.service"
        mode    = "0644"
        content = file("${local.userdata_dir}/mlflow-metrics.service")
      },
      {
        path    = "/etc/systemd/system/mlflow-metrics.timer"
        mode    = "0644"
        content = file("${local.userdata_dir}/mlflow-metrics.timer")
      },
      {
        path = "/etc/systemd/system/mlflow-${role}.service"
        mode = "0644"
        content = templatefile("${local.userdata_dir}/container.service.tftpl", {
          description = "MLflow ${role} (podman container)"
          name        = "mlflow-${role}"
          image       = "localhost/mlflow-${role}:latest"
          env_file    = "/etc/mlflow/${role}.env"
        })
      },
      {
        path    = "/etc/mlflow/proxy.env"
        mode    = "0644"
        content = join("", [for k, v in merge(local.proxy_settings[role], local.proxy_logins[role], local.proxy_tls[role], role == "serving" ? local.proxy_auth_tls : {}) : "${k}=${v}\n"])
      },
      {
        path    = "/etc/mlflow/image.env"
        mode    = "0644"
        content = role == "tracking" ? local.tracking_image_env : "RELEASED_IMAGE=${local.released_images[role]}\n"
      },
      ], role != "tracking" ? [] : [
      # Day two (orm-pack upgrade, through OCI Run Command, which runs commands as the user ocarun):
      # mlflow-upgrade plan VERSION | status, and ocarun may run that script as root, nothing else.
      {
        path    = "/usr/local/sbin/mlflow-upgrade"
        mode    = "0755"
        content = file("${local.userdata_dir}/mlflow-upgrade.sh")
      },
      {
        path    = "/etc/sudoers.d/mlflow-upgrade"
        mode    = "0440"
        content = local.mlflow_upgrade_sudoers
      },
      # Housekeeping (the tracking image's `housekeeping` mode), once a day.
      {
        path    = "/etc/systemd/system/mlflow-housekeeping.service"
        mode    = "0644"
        content = file("${local.userdata_dir}/mlflow-housekeeping.service")
      },
      {
        path    = "/etc/systemd/system/mlflow-housekeeping.timer"
        mode    = "0644"
        content = file("${local.userdata_dir}/mlflow-housekeeping.timer")
      },
    ])
  }
  # OCI Run Command runs the commands orm-pack upgrade sends as the user ocarun ("Running Commands on an
  # Instance": to run one as root, ocarun needs a sudoers entry). Here it may run mlflow-upgrade as root, which
  # checks its own arguments, and nothing else; sudo resets its environment, so the script's paths are root's.
  mlflow_upgrade_sudoers = <<-EOT
    # Written by the stack (cloud-init): OCI Run Command's user may run mlflow-upgrade as root, nothing else.
    Defaults:ocarun !requiretty, env_reset
    ocarun ALL=(root) NOPASSWD: /usr/local/sbin/mlflow-upgrade
  EOT

  # The tracking VM's images: the one it runs (mlflow_version) and, for mlflow-upgrade and a refused
  # migration at boot, each version's released image (RELEASED_IMAGE_<version with _>; empty: build it
  # with --build-arg MLFLOW_VERSION=<version>). MLFLOW_VERSIONS lists them, comma-separated, this release's own first. A
  # change of mlflow_version changes user_data, so OCI replaces the VM: the intended path of an upgrade.
  tracking_image_env = join("", concat(
    [
      "RELEASED_IMAGE=${local.released_images["tracking"]}\n",
      "MLFLOW_VERSION=${var.mlflow_version}\n",
      "MLFLOW_VERSIONS=${join(",", local.mlflow_versions)}\n",
    ],
    [for version in local.mlflow_versions : "RELEASED_IMAGE_${replace(version, ".", "_")}=${local.tracking_images[version]}\n"],
  ))

  # Per role: its settings file, and commands.txt pointing at the stack output that has its URL (the VM
  # cannot know its public address at boot).
  role_settings = { tracking = local.tracking_settings, serving = local.serving_settings }
  vm_commands_txt = {
    tracking = templatefile("${local.userdata_dir}/commands-tracking.txt.tftpl", merge(local.commands_tracking, { mlflow_url = "https://<public IP: stack output mlflow_url>" }))
    serving  = templatefile("${local.userdata_dir}/commands-serving.txt.tftpl", merge(local.commands_serving, { serving_url = "https://<public IP: stack output serving_url>:${local.serving_port}" }))
  }
  vm_enabled = { tracking = !local.oke_enabled, serving = local.serving_enabled }

  # The serving VM's settings name the tracking VM by the address it is created with, not by the
  # instance, so neither role's user_data waits for the other VM.
  user_data = {
    for role, enabled in local.vm_enabled : role => enabled ? base64gzip(templatefile("${local.userdata_dir}/cloud-init.yaml.tftpl", {
      role = role
      files = concat(local.static_files[role], [
        {
          path    = "/etc/mlflow/${role}.env"
          mode    = "0600"
          content = join("", [for k, v in local.role_settings[role] : "${k}=${v}\n"])
        },
        {
          path    = "/etc/mlflow/runtime.env"
          mode    = "0600"
          content = join("", [for k, v in local.runtime_settings[role] : "${k}=${v}\n"])
        },
        {
          path    = "/etc/mlflow/commands.txt"
          mode    = "0644"
          content = local.vm_commands_txt[role]
        },
        {
          path    = "/etc/mlflow/logs.env"
          mode    = "0644"
          content = join("", [for k, v in local.log_settings[role] : "${k}=${v}\n"])
        },
      ])
    })) : ""
  }
}
