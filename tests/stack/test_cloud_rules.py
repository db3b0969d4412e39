"""The stack follows the cloud's own rules that the provider double enforces (tests/test_harness_cloud_rules.py):
each rule is shown on the deployment profiles."""
import json
import re

import pytest

from harness.project import stack_variables_text
from harness.terraform import Terraform

from .conftest import BASE_TFVARS, REPO, assert_only_own_logins, repo_layout, tfvars_of

IMAGE_A = "ocid1.image.oc1.iad.amaaaaaakcdy6e46zd662rdzxlfuzzsf2ejkm4ly6rnzjqoeaksqhwu55jpq"

pytestmark = pytest.mark.terraform


def _configured_resources(plan: dict) -> list[dict]:
    return plan["configuration"]["root_module"]["resources"]


def test_every_identity_resource_goes_through_the_home_region(deployed):
    """IAM writes are accepted only by the home region (403-NotAllowed elsewhere)."""
    identity = [r for r in _configured_resources(deployed("default").first_plan.raw)
                if r["mode"] == "managed" and r["type"].startswith("oci_identity_")]
    assert identity, "the stack has no identity resource: this test proves nothing"
    assert {r["address"]: r["provider_config_key"] for r in identity} == {r["address"]: "oci.home" for r in identity}


def test_a_stack_outside_the_home_region_applies(deployed):
    d = deployed("other-region")
    assert d.replan_exit_code == 0
    assert d.outputs["s3_endpoint"].endswith(".eu-frankfurt-1.oraclecloud.com")


def _region_rule() -> re.Pattern:
    text = stack_variables_text()
    block = text[text.index('variable "region"'):]
    return re.compile(re.search(r'regex\("([^"]+)", var\.region\)', block).group(1).replace("\\\\", "\\"))


def test_every_oci_region_the_sdk_knows_is_a_valid_region():
    """All realms' regions (the SDK's list), e.g. us-gov-ashburn-1 and me-dcc-muscat-1, pass the validation."""
    import oci.regions_definitions

    rule = _region_rule()
    assert len(oci.regions_definitions.REGIONS) > 80
    assert [r for r in oci.regions_definitions.REGIONS if not rule.fullmatch(r)] == []
    assert [r for r in ("IAD", "us_ashburn_1", "us-ashburn", "US-ASHBURN-1", "ashburn-1", "") if rule.fullmatch(r)] == []


@pytest.fixture(scope="module")
def tf(tmp_path_factory):
    tf = Terraform(repo_layout(tmp_path_factory.mktemp("cloud-rules")))
    tf.init()
    return tf


def test_a_region_of_another_realm_plans(tf):
    outputs = tf.plan_summary({**BASE_TFVARS, "region": "us-gov-ashburn-1"}).outputs
    assert outputs["s3_endpoint"] == "https://testnamespace.compat.objectstorage.us-gov-ashburn-1.oraclecloud.com"


def _images_with_a_newer_one() -> dict:
    """The double's image fixtures plus an Oracle Linux 9 image published after all of them."""
    fixtures = json.loads((REPO / "tests" / "harness" / "double" / "fixtures.json").read_text())
    images = fixtures["oci_core_images"]["images"]
    newest = dict(next(i for i in images if i["id"] == "ocid1.image.oc1.iad.amaaaaaak7zeokbygadn2vmfjh3kmfjsc543l24wi2ejyrubol5ze7o7737q"),
                  id=IMAGE_A, display_name="Oracle-Linux-9.7-2026.11.20-0",
                  time_created="2026-11-20T00:00:00Z")
    return {"oci_core_images": {"images": [newest, *images]}}


def _instance_actions(plan: dict) -> dict:
    return {r["address"]: r["change"]["actions"] for r in plan["resource_changes"] if r["type"] == "oci_core_instance"}


def test_a_newer_platform_image_leaves_the_vms_alone(tmp_path):
    """Oracle publishes a new image about monthly; changing an instance's source_id re-images its boot
    volume. The next apply, for any unrelated change, must not re-image the VMs."""
    workdir = repo_layout(tmp_path / "stack")
    first = Terraform(workdir)
    first.init()
    first.apply(BASE_TFVARS)
    later = Terraform(workdir, fixtures=_images_with_a_newer_one())
    plan = later.plan({**BASE_TFVARS, "allowed_ingress_cidr": "198.51.100.0/24"})  # an unrelated change
    assert set(map(tuple, _instance_actions(plan).values())) == {("no-op",)}, _instance_actions(plan)
    # choosing an image in the form moves a VM on, deliberately: a new tracking VM from that image
    moved = later.plan({**BASE_TFVARS, "tracking_image_id": IMAGE_A})
    created = [r for r in moved["resource_changes"] if r["type"] == "oci_core_instance" and "create" in
               r["change"]["actions"]]
    assert [r["change"]["after"]["source_details"][0]["source_id"] for r in created] == [IMAGE_A]
    assert [r["change"]["after"]["display_name"] for r in created] == ["mlflow-tracking"]


def test_the_database_leaves_its_backups_unless_told_otherwise(tf):
    """MySQL HeatWave's API default for automatic backups on delete changed in 2025: the stack says it."""
    kept = tf.plan_summary(BASE_TFVARS).values["oci_mysql_mysql_db_system.mlflow"]["deletion_policy"][0]
    assert (kept["final_backup"], kept["automatic_backup_retention"]) == ("REQUIRE_FINAL_BACKUP", "RETAIN")
    dropped = tf.plan_summary({**BASE_TFVARS, "mysql_keep_backups_on_delete": False}).values[
        "oci_mysql_mysql_db_system.mlflow"]["deletion_policy"][0]
    assert (dropped["final_backup"], dropped["automatic_backup_retention"]) == ("SKIP_FINAL_BACKUP", "DELETE")


def test_a_fresh_deployment_destroys_cleanly(tmp_path):
    """The stack's own objects (the VMs' runtime files and requirements locks) go with all their versions,
    so the runtime bucket is empty when Terraform deletes it; an artifact bucket MLflow never wrote to goes too."""
    tf = Terraform(repo_layout(tmp_path / "stack"))
    tf.init()
    tf.apply(BASE_TFVARS)
    for name in ("runtime_files", "requirements_lock"):
        assert any(a.startswith(f"oci_objectstorage_object.{name}") for a in tf.state_resources()), name
    tf.destroy(BASE_TFVARS)
    assert tf.state_resources() == []


def test_a_single_sign_on_deployment_destroys_cleanly(tmp_path):
    """Its identity domain application is active, which a domain deletes only when forced. Applied with a
    notebook session, it also shows (from the state, where every OCID is known) that the notebook and the
    serving VM read their own logins' secrets alone, never the admin's: no profile has both."""
    tfvars = {**BASE_TFVARS, "mlflow_users": "sso", "sso_admin_group": "mlflow-admins", "sso_user_group": "data-scientists",
              "sso_domain_url": "https://idcs-0123456789abcdef0123456789abcdef.identity.oraclecloud.com",
              "create_notebook_session": True}
    tf = Terraform(repo_layout(tmp_path / "stack"))
    tf.init()
    tf.apply(tfvars)
    assert "oci_identity_domains_app.sso[0]" in tf.state_resources()
    state = json.loads(tf.run("show", "-json").stdout)["values"]["root_module"]["resources"]
    assert assert_only_own_logins(state, tf.output()) == {"serving", "notebook"}
    tf.destroy(tfvars)
    assert tf.state_resources() == []


def _image_settings(plan: dict) -> dict:
    import base64
    import gzip

    import yaml

    found = {}
    for r in plan["resource_changes"]:
        if r["type"] == "oci_core_instance" and r["change"]["after"]:
            user_data = r["change"]["after"]["metadata"]["user_data"]
            if isinstance(user_data, str):
                config = yaml.safe_load(gzip.decompress(base64.b64decode(user_data)).decode())
                files = {e["path"]: e["content"] for e in config["write_files"]}
                found[r["change"]["after"]["display_name"]] = files["/etc/mlflow/image.env"].strip()
    return found


def _released_images(plan: dict) -> dict:
    """unit -> the RELEASED_IMAGE line of its VM's image.env (the tracking VM's also names each MLflow
    version's image: test_mlflow_version.py)."""
    return {unit: next(line for line in text.splitlines() if line.startswith("RELEASED_IMAGE="))
            for unit, text in _image_settings(plan).items()}


def test_the_vms_pull_the_release_images_by_digest_when_the_release_records_them(deployed):
    """On the default profile's deployment (every value known after its apply), planned again with a release's
    docker/images.json beside its stack, then without a registry; images.json is gone again afterwards."""
    release = (REPO / "VERSION").read_text().strip()
    d = deployed("default")
    tfvars = tfvars_of(d.inventory)
    assert _released_images(d.replan) == {
        "mlflow-tracking": f"RELEASED_IMAGE=ghcr.io/oracle-quickstart/oci-mlflow-tracking:{release}",
        "mlflow-serving": f"RELEASED_IMAGE=ghcr.io/oracle-quickstart/oci-mlflow-serving:{release}"}
    digest = "sha256:" + "ab" * 32
    images = d.tf.workdir.parent / "docker" / "images.json"
    assert not images.exists()
    images.write_text(json.dumps({"tracking": digest, "serving": digest}))
    try:
        pinned = _released_images(d.tf.plan(tfvars, "digests.bin"))
    finally:
        images.unlink()
    assert pinned["mlflow-tracking"] == f"RELEASED_IMAGE=ghcr.io/oracle-quickstart/oci-mlflow-tracking@{digest}"
    built = _image_settings(d.tf.plan({**tfvars, "container_registry": ""}, "no-registry.bin"))
    assert {text.splitlines()[0] for text in built.values()} == {"RELEASED_IMAGE="}
    # without a registry every version is built: no image named for any of them
    assert [line for line in built["mlflow-tracking"].splitlines() if line.startswith("RELEASED_IMAGE_")] == \
        ["RELEASED_IMAGE_3_17_2=", "RELEASED_IMAGE_3_16_1=", "RELEASED_IMAGE_3_15_2="]
