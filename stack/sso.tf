# Single sign-on (mlflow_users = "sso"): people sign in to MLflow with the tenancy's OCI identity domain.
#
# The stack registers a confidential application in the domain (authorization code flow, the tracking
# URL's /oidc/callback as its redirect), lets exactly the two groups use it, and keeps its client id and
# secret in Vault. The tracking server (docker/lib/mlflow_oci/oidc_auth.py) maps the groups to MLflow admins
# and users.
#
# Order: the redirect names the VM's reserved public IP, which exists only after the VM (public_ips.tf), so
# the application and its credentials come after the VM too. The VM is therefore told the two secrets' names
# (chosen here), never their OCIDs, and reads them by name in the stack's vault; until they exist its
# tracking service fails to start and systemd starts it again (container.service: every 10 s). On OKE the
# redirect names the load balancer's reserved IP and the pods are told the same names (oke.tf).
#
# Identity domain writes go through the home region's provider, as IAM's do (iam.tf).
#
# Not done by the stack: a domain puts no groups in its tokens by default, and the custom claim that adds
# them is a domain-wide setting only its administrator can make (README, "Single sign-on").

locals {
  sso_enabled    = var.mlflow_users == "sso"
  sso_domain_url = trimsuffix(trimsuffix(var.sso_domain_url, "/"), ":443")
  # Looked up only when there is something to look up; checks.tf names what is missing.
  sso_groups = {
    for role, name in { admin = var.sso_admin_group, user = var.sso_user_group } : role => name
    if local.sso_enabled && name != "" && var.sso_domain_url != ""
  }
  # The group OCIDs-to-be: a group name that is not in the domain leaves an empty list (checks.tf).
  sso_group_ids    = { for role, group in data.oci_identity_domains_groups.sso : role => [for g in group.groups : g.id] }
  sso_redirect_uri = local.sso_enabled ? "${local.tracking_url}/oidc/callback" : ""
  # The domain-wide custom claim that puts a person's group names into the domain's tokens, under the name
  # the tracking server reads (MLFLOW_OIDC_GROUPS_CLAIM, default "groups").
  sso_groups_claim = {
    schemas    = ["urn:ietf:params:scim:schemas:oracle:idcs:CustomClaim"]
    name       = "groups"
    value      = "$user.groups.*.display"
    expression = true
    mode       = "always"
    tokenType  = "BOTH"
    allScopes  = true
  }
  sso_secret_names = {
    client_id     = "${var.name_prefix}-oidc-client-id"
    client_secret = "${var.name_prefix}-oidc-client-secret"
  }
}

data "oci_identity_domains_groups" "sso" {
  for_each = local.sso_groups
  provider = oci.home

  idcs_endpoint = local.sso_domain_url
  group_filter  = "displayName eq \"${each.value}\""
}

resource "oci_identity_domains_app" "sso" {
  count    = local.sso_enabled ? 1 : 0
  provider = oci.home

  idcs_endpoint = local.sso_domain_url
  schemas       = ["urn:ietf:params:scim:schemas:oracle:idcs:App"]
  display_name  = "${var.name_prefix}-mlflow"
  description   = "MLflow tracking server of the stack ${var.name_prefix}: sign-in for the groups ${var.sso_admin_group} (admins) and ${var.sso_user_group} (users)"

  based_on_template {
    value = "CustomWebAppTemplateId"
  }
  client_type     = "confidential"
  is_oauth_client = true
  # refresh_token: the tracking server asks for a signed-in person's groups again every 15 minutes with it
  # (docker/lib/mlflow_oci/group_checks.py); the domain issues one for the offline_access scope only.
  allowed_grants = ["authorization_code", "refresh_token"]
  redirect_uris  = [local.sso_redirect_uri]
  # The redirect's host is a bare IP address: without this the domain checks it as a DNS name.
  all_url_schemes_allowed = true
  # Only members of the granted groups (below) get tokens for this application.
  allow_access_control = true
  bypass_consent       = true
  show_in_my_apps      = false
  active               = true
  # The domain deletes an active application only when the delete is forced.
  force_delete = true
}

resource "oci_identity_domains_grant" "sso" {
  for_each = local.sso_groups
  provider = oci.home

  idcs_endpoint   = local.sso_domain_url
  schemas         = ["urn:ietf:params:scim:schemas:oracle:idcs:Grant"]
  grant_mechanism = "ADMINISTRATOR_TO_GROUP"

  grantee {
    type  = "Group"
    value = try(local.sso_group_ids[each.key][0], "")
  }
  app {
    value = oci_identity_domains_app.sso[0].id
  }
}

# The provider does not mark the client secret sensitive: sensitive() keeps it out of plans and logs.
resource "oci_vault_secret" "sso" {
  for_each = local.sso_enabled ? local.sso_secret_names : {}

  compartment_id = var.compartment_ocid
  vault_id       = local.vault_id
  key_id         = local.vault_key_id
  secret_name    = each.value
  description    = "MLflow stack ${var.name_prefix}: the identity domain application's ${replace(each.key, "_", " ")}"
  freeform_tags  = local.freeform_tags

  secret_content {
    content_type = "BASE64"
    content = sensitive(base64encode(each.key == "client_id"
      ? oci_identity_domains_app.sso[0].name
    : oci_identity_domains_app.sso[0].client_secret))
  }
}
