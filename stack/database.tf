# MySQL HeatWave DB system for the MLflow backend store, in the private subnet, reachable only
# from the tracking VM's NSG. The MLflow database and its user are created at the tracking VM's
# first boot (docker/tracking/init_db.py), with the admin credentials below.
# TLS: the DB system presents a certificate from the stack's CA for its private IP (tls.tf; HeatWave's "bring
# your own certificate"), which the tracking server verifies, name included (docker/tracking/entrypoint.sh).
# The DB system reads it with its resource principal (iam.tf, policy "mysql_certificate"), at creation.
# Standalone configuration: sql_require_primary_key is off there; the runtime also sets it off
# for its own session so MLflow's migrations pass on HA configurations.

resource "oci_mysql_mysql_db_system" "mlflow" {
  compartment_id          = var.compartment_ocid
  availability_domain     = local.availability_domain
  display_name            = "${var.name_prefix}-mysql"
  description             = "MLflow backend store (${var.name_prefix})"
  subnet_id               = local.private_subnet_id
  ip_address              = local.mysql_private_ip
  nsg_ids                 = [oci_core_network_security_group.role["mysql"].id]
  shape_name              = var.mysql_shape
  configuration_id        = local.mysql_configuration
  admin_username          = var.mysql_admin_username
  admin_password          = var.mysql_admin_password
  data_storage_size_in_gb = local.mysql_storage_gb
  is_highly_available     = false
  freeform_tags           = local.freeform_tags

  secure_connections {
    certificate_generation_type = "BYOC"
    certificate_id              = local.tls_mysql_certificate_id
  }

  backup_policy {
    is_enabled        = true
    retention_in_days = var.mysql_backup_retention_days
  }

  # Set explicitly: the API's own default for automatic backups on delete changed to RETAIN in 2025.
  deletion_policy {
    is_delete_protected        = var.mysql_deletion_protection
    automatic_backup_retention = var.mysql_keep_backups_on_delete ? "RETAIN" : "DELETE"
    final_backup               = var.mysql_keep_backups_on_delete ? "REQUIRE_FINAL_BACKUP" : "SKIP_FINAL_BACKUP"
  }

  # It reads its certificate when it is created: only once the policy that allows it applies (waits.tf).
  depends_on = [time_sleep.mysql_certificate_policy]

  lifecycle {
    # admin_password and ip_address force a new DB system in the provider: a retyped form value must
    # never wipe the MLflow database. Rotate the admin password in the console (commands.txt says how);
    # the address is chosen once, at creation (locals.tf, mysql_private_ip).
    ignore_changes = [admin_password, ip_address]
  }
}
