"""The provider double enforces the cloud's own rules, not just the schema, each shown on a small
configuration written here. (The rules, as OCI documents them:)

- IAM writes go to the tenancy's home region only: Identity answers a create, update or delete sent
  to another region's endpoint with `403-NotAllowed, Please go to your home region <KEY> to execute
  CREATE, UPDATE and DELETE operations`, and the oci provider does not redirect them.
- Object Storage refuses to delete a bucket that holds objects, and in a versioned bucket every old
  object version counts: `409-BucketNotEmpty, Bucket named '<name>' is not empty. Delete all object
  versions first.` The provider has no force-destroy.
- An identity domain deletes an application only after it is deactivated ("Deleting Applications":
  deactivate it first), unless the delete is forced (the provider's `force_delete`).
- Replacements the provider decides in its CustomizeDiff functions, beyond the schema's ForceNew flags
  (oracle/terraform-provider-oci v7.19.0, harness/double/customize_diff.py): a VM whose `metadata`
  changes its `user_data` or `ssh_authorized_keys` is replaced, other metadata is updated in place; an
  OKE cluster whose API endpoint moves to another subnet is replaced.
- MySQL DB systems (harness/double/db_systems.py): one created with `ip_address` has that address on its
  endpoint; the list data source carries the address only under `endpoints` (the provider copies
  DbSystemSummary, which has no top-level address or subnet), and a deleted DB system stays listed as
  DELETED.
"""
import json

import pytest

from harness.double import propagation
from harness.objectstore import ObjectStore
from harness.terraform import Terraform, TerraformError

SUBNET_A = "ocid1.subnet.oc1.iad.amaaaaaakcfxo3gxt3xlxc6rmpj622jp5glw3yqa4kewbihh4o4sm4aci4ta"

pytestmark = pytest.mark.terraform

VERSIONS = """
terraform {
  required_providers {
    oci = { source = "oracle/oci" }
  }
}
"""
POLICY = """
resource "oci_identity_policy" "readers" {
  %s
  compartment_id = "ocid1.tenancy.oc1..aaaaaaaahxusqrskr7qsgyqq4dgoaaymjyom23m4mui2oapgdbrmklngzzia"
  name           = "readers"
  description    = "test policy"
  statements     = ["Allow group readers to read all-resources in tenancy"]
}
"""


def _config(tmp_path, body: str) -> Terraform:
    workdir = tmp_path / "config"
    workdir.mkdir()
    (workdir / "main.tf").write_text(VERSIONS + body)
    tf = Terraform(workdir)
    tf.init()
    return tf


def test_an_iam_write_outside_the_home_region_is_refused(tmp_path):
    tf = _config(tmp_path, 'provider "oci" {\n  region = "eu-frankfurt-1"\n}\n' + POLICY % "")
    with pytest.raises(TerraformError) as refused:
        tf.apply()
    assert "403-NotAllowed, Please go to your home region IAD to execute CREATE, UPDATE and DELETE operations." \
        in refused.value.args[0]
    assert tf.state_resources() == []


def test_an_iam_write_in_the_home_region_is_accepted(tmp_path):
    tf = _config(tmp_path, 'provider "oci" {\n  region = "us-ashburn-1"\n}\n' + POLICY % "")
    tf.apply()
    assert tf.state_resources() == ["oci_identity_policy.readers"]


def test_a_home_region_alias_found_through_region_subscriptions_works_from_any_region(tmp_path):
    """The pattern of Oracle's stacks: a provider alias whose region is the home region subscription."""
    tf = _config(tmp_path, """
provider "oci" {
  region = "eu-frankfurt-1"
}

data "oci_identity_region_subscriptions" "home" {
  tenancy_id = "ocid1.tenancy.oc1..aaaaaaaahxusqrskr7qsgyqq4dgoaaymjyom23m4mui2oapgdbrmklngzzia"
  filter {
    name   = "is_home_region"
    values = [true]
  }
}

provider "oci" {
  alias  = "home"
  region = data.oci_identity_region_subscriptions.home.region_subscriptions[0].region_name
}
""" + POLICY % "provider = oci.home")
    tf.apply()
    assert "oci_identity_policy.readers" in tf.state_resources()


BUCKET = """
provider "oci" {
  region = "us-ashburn-1"
}

resource "oci_objectstorage_bucket" "artifacts" {
  compartment_id = "ocid1.compartment.oc1..aaaaaaaahbi7m5qn5a66envartcbaj47n6h63dko6v2cc7hpv7njg7ysvevq"
  namespace      = "testnamespace"
  name           = "rules-artifacts"
  versioning     = "Enabled"
}
"""


def test_a_bucket_with_objects_or_old_versions_cannot_be_destroyed(tmp_path):
    tf = _config(tmp_path, BUCKET)
    tf.apply()
    store = ObjectStore(tf.env["OCI_DOUBLE_OBJECT_STORE"])
    version = store.put("testnamespace", "rules-artifacts", "1/abc/artifacts/model.pkl", 2048)
    store.delete_object("testnamespace", "rules-artifacts", "1/abc/artifacts/model.pkl")  # a delete marker
    with pytest.raises(TerraformError) as refused:
        tf.destroy()
    assert ("409-BucketNotEmpty, Bucket named 'rules-artifacts' is not empty. Delete all object versions first."
            in refused.value.message)
    assert tf.state_resources() == ["oci_objectstorage_bucket.artifacts"]  # still there, still in the state
    for left in store.versions("testnamespace", "rules-artifacts"):
        store.delete_object("testnamespace", "rules-artifacts", left["name"], left["versionId"])
    assert version["versionId"] not in str(store.versions("testnamespace", "rules-artifacts"))
    tf.destroy()
    assert tf.state_resources() == []


APP = """
resource "oci_identity_domains_app" "web" {
  idcs_endpoint = "https://idcs-0123456789abcdef0123456789abcdef.identity.oraclecloud.com"
  schemas       = ["urn:ietf:params:scim:schemas:oracle:idcs:App"]
  display_name  = "rules-web"
  active        = true
  %s
  based_on_template {
    value = "CustomWebAppTemplateId"
  }
}
"""


@pytest.mark.parametrize("forced", [False, True])
def test_an_active_identity_domain_app_is_deleted_only_when_forced(tmp_path, forced):
    tf = _config(tmp_path, APP % ("force_delete = true" if forced else ""))
    tf.apply()
    if forced:
        tf.destroy()
        assert tf.state_resources() == []
        return
    with pytest.raises(TerraformError) as refused:
        tf.destroy()
    assert "the application rules-web is active: deactivate it before deleting it" in refused.value.message
    assert tf.state_resources() == ["oci_identity_domains_app.web"]


INSTANCE = """
variable "user_data" {
  type = string
}
variable "ssh_key" {
  type = string
}
variable "role" {
  type = string
}

resource "oci_core_instance" "vm" {
  availability_domain = "Uocm:US-ASHBURN-AD-1"
  compartment_id      = "ocid1.compartment.oc1..aaaaaaaahbi7m5qn5a66envartcbaj47n6h63dko6v2cc7hpv7njg7ysvevq"
  shape               = "VM.Standard.E5.Flex"
  source_details {
    source_type = "image"
    source_id   = "ocid1.image.oc1.iad.amaaaaaab3vx245wfasqnthbijhqdurjwloowpvop46u2r6ctjxkwxgqtulq"
  }
  create_vnic_details {
    subnet_id = "ocid1.subnet.oc1.iad.amaaaaaazd6lxd2ngz222kmfopvzow4lqrqdci4kdxolojefcevfm5xx4qrq"
  }
  metadata = {
    user_data           = var.user_data
    ssh_authorized_keys = var.ssh_key
    role                = var.role
  }
}
"""
FIRST = {"user_data": "IyFiaW4vYmFzaA==", "ssh_key": "ssh-ed25519 AAAA one", "role": "tracking"}


@pytest.mark.parametrize("change, action", [
    ({"user_data": "IyEvYmluL3NoCg=="}, ["delete", "create"]),       # a new MLflow version, any setting
    ({"ssh_key": "ssh-ed25519 AAAA two"}, ["delete", "create"]),
    ({"role": "serving"}, ["update"]),                                 # any other metadata key
])
def test_a_vm_whose_user_data_or_ssh_key_changes_is_replaced(tmp_path, change, action):
    tf = _config(tmp_path, INSTANCE)
    tf.apply(FIRST)
    plan = tf.plan({**FIRST, **change})
    (vm,) = [c for c in plan["resource_changes"] if c["address"] == "oci_core_instance.vm"]
    assert vm["change"]["actions"] == action
    if action != ["update"]:
        assert ["metadata"] in vm["change"]["replace_paths"]


CLUSTER = """
variable "endpoint_subnet" {
  type = string
}

resource "oci_containerengine_cluster" "oke" {
  compartment_id     = "ocid1.compartment.oc1..aaaaaaaahbi7m5qn5a66envartcbaj47n6h63dko6v2cc7hpv7njg7ysvevq"
  kubernetes_version = "v1.34.2"
  name               = "rules-oke"
  vcn_id             = "ocid1.vcn.oc1.iad.amaaaaaasrndt23qungdif3r2tjktmpgp6hyjpejc4caa5tqjzrn42mzfeqa"
  endpoint_config {
    subnet_id            = var.endpoint_subnet
    is_public_ip_enabled = true
  }
}
"""


def test_an_oke_cluster_whose_api_endpoint_moves_to_another_subnet_is_replaced(tmp_path):
    tf = _config(tmp_path, CLUSTER)
    tf.apply({"endpoint_subnet": SUBNET_A})
    assert tf.plan_exit_code({"endpoint_subnet": SUBNET_A}).returncode == 0
    plan = tf.plan({"endpoint_subnet": "ocid1.subnet.oc1.iad.amaaaaaaw6cih3tj3rwvhzuysddnath4gggdvnfvt4ay3yi77slt4zpm47vq"})
    (cluster,) = [c for c in plan["resource_changes"] if c["address"] == "oci_containerengine_cluster.oke"]
    assert cluster["change"]["actions"] == ["delete", "create"]
    assert ["endpoint_config"] in cluster["change"]["replace_paths"]


DB_SYSTEM = """
resource "oci_mysql_mysql_db_system" "db" {
  count               = %d
  compartment_id      = "ocid1.compartment.oc1..aaaaaaaahbi7m5qn5a66envartcbaj47n6h63dko6v2cc7hpv7njg7ysvevq"
  availability_domain = "Uocm:US-ASHBURN-AD-1"
  display_name        = "team-mysql"
  subnet_id           = "%s"
  shape_name          = "MySQL.Free"
  admin_username      = "mlflowadmin"
  admin_password      = "Sup3r-Secret-pw"
  ip_address          = "10.0.2.10"
}

data "oci_mysql_mysql_db_systems" "listed" {
  depends_on     = [oci_mysql_mysql_db_system.db]
  compartment_id = "ocid1.compartment.oc1..aaaaaaaahbi7m5qn5a66envartcbaj47n6h63dko6v2cc7hpv7njg7ysvevq"
  display_name   = "team-mysql"
}

output "created" {
  value = [for db in oci_mysql_mysql_db_system.db : { ip = db.ip_address, endpoint = db.endpoints[0].ip_address }]
}

output "listed" {
  value = [for db in data.oci_mysql_mysql_db_systems.listed.db_systems : {
    state = db.state, ip = db.ip_address, subnet = db.subnet_id, endpoint = db.endpoints[0].ip_address
  }]
}
"""


def test_a_db_system_has_the_address_it_was_created_with_and_is_listed_without_a_top_level_one(tmp_path):
    tf = _config(tmp_path, DB_SYSTEM % (1, SUBNET_A))
    tf.apply()
    outputs = tf.output()
    assert outputs["created"] == [{"ip": "10.0.2.10", "endpoint": "10.0.2.10"}]
    # read in the same apply, after the create: the summary's fields only
    assert outputs["listed"] == [{"state": "ACTIVE", "ip": None, "subnet": None, "endpoint": "10.0.2.10"}]

    (tf.workdir / "main.tf").write_text(VERSIONS + DB_SYSTEM % (0, SUBNET_A))
    tf.apply()
    assert tf.output()["listed"] == [{"state": "DELETED", "ip": None, "subnet": None, "endpoint": "10.0.2.10"}]


LIFECYCLE = """
provider "oci" {
  region = "us-ashburn-1"
}

variable "days" {
  type = number
}

variable "bucket" {
  type = string
}

resource "oci_objectstorage_object_lifecycle_policy" "artifacts" {
  namespace = "testnamespace"
  bucket    = var.bucket
  rules {
    name        = "delete-previous-versions"
    action      = "DELETE"
    target      = "previous-object-versions"
    time_amount = var.days
    time_unit   = "DAYS"
    is_enabled  = true
  }
}
"""


def test_lifecycle_rules_need_object_storages_own_policy_and_move_only_with_their_bucket(tmp_path):
    """OCI's "Using Object Lifecycle Policies": Object Storage applies the rules as itself, so PutObjectLifecyclePolicy
    is refused without a policy letting objectstorage-<region> manage the objects. In the provider's source
    (objectstorage_object_lifecycle_policy_resource.go) bucket and namespace are ForceNew, the rules are not."""
    tf = _config(tmp_path, LIFECYCLE)
    with pytest.raises(TerraformError) as refused:
        tf.apply({"days": 30, "bucket": "rules-artifacts"})
    assert "400-InsufficientServicePermissions" in refused.value.message
    assert tf.state_resources() == []

    (tmp_path / "config" / "policy.tf").write_text(POLICY.replace(
        '"Allow group readers to read all-resources in tenancy"',
        '"Allow service objectstorage-us-ashburn-1 to manage object-family in tenancy"') % "")
    main = tmp_path / "config" / "main.tf"
    main.write_text(main.read_text().replace("  rules {", "  depends_on = [oci_identity_policy.readers]\n  rules {"))
    tf.env[propagation.SCALE_ENV] = "0"  # the policy is in effect at once
    tf.apply({"days": 30, "bucket": "rules-artifacts"})
    state = json.loads(tf.run("show", "-json").stdout)
    (policy,) = [r for r in state["values"]["root_module"]["resources"] if r["type"].endswith("lifecycle_policy")]
    assert policy["values"]["id"] == "n/testnamespace/b/rules-artifacts/l"

    def actions(variables):
        plan = tf.plan(variables)
        return [c["change"]["actions"] for c in plan["resource_changes"] if c["type"].endswith("lifecycle_policy")]

    assert actions({"days": 60, "bucket": "rules-artifacts"}) == [["update"]]
    assert actions({"days": 30, "bucket": "other-artifacts"}) == [["delete", "create"]]
