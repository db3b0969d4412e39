"""Day two from the console: a user changes the MLflow version in the form and applies. The tracking VM's
user_data names that version's image (the release's oci-mlflow-tracking:<release>-mlflow<version>, or a build
with that version's lock, which the runtime bucket holds), so OCI replaces the tracking VM and nothing else;
the serving VM, the database and the buckets stay. The VM can take the commands orm-pack upgrade sends it
(Run Command plugin, mlflow-upgrade, sudo for ocarun to that script alone), and the outputs name what
orm-pack upgrade works on."""
import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from harness import static
from harness.release import DATA_RESOURCES
from harness.terraform import Terraform
from harness.tools import missing
from orm_pack.stack import archive, images

from .conftest import BASE_TFVARS, REPO, instance_user_data, repo_layout, tfvars_of

pytestmark = pytest.mark.terraform

VERSIONS = ["3.17.2", "3.16.1", "3.15.2"]
RELEASE = (REPO / "VERSION").read_text().strip()
REGISTRY = "ghcr.io/oracle-quickstart"
TRACKING = 'oci_core_instance.vm["tracking"]'
SERVING = 'oci_core_instance.vm["serving"]'


def _env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def _files(plan: dict, address: str) -> dict[str, str]:
    return static.written_files(static.decode_user_data(instance_user_data(plan)[address]))


@pytest.fixture(scope="module")
def upgraded(deployed):
    """The default deployment (3.17.2), planned again with mlflow_version = 3.16.1: the console's day two."""
    d = deployed("default")
    return d, d.tf.plan({**tfvars_of(d.inventory), "mlflow_version": "3.16.1"}, "mlflow-3.16.1.bin")


def test_a_new_mlflow_version_replaces_the_tracking_vm_and_nothing_else(upgraded):
    d, plan = upgraded
    changed = {r["address"]: r["change"]["actions"] for r in plan["resource_changes"]
               if r["change"]["actions"] != ["no-op"]}
    replaced = {a: actions for a, actions in changed.items() if "delete" in actions}
    assert replaced == {TRACKING: ["delete", "create"]}, changed  # a user_data change: a new VM on OCI
    # what follows the new VM: the reserved public IP (the URL stays) and the dynamic group that names it
    assert {a for a, actions in changed.items() if actions == ["update"]} == \
        {'oci_core_public_ip.vm["tracking"]', 'oci_identity_dynamic_group.vm["tracking"]'}, changed
    assert not [a for a in replaced if a.split(".")[0] in DATA_RESOURCES]  # no data resource is replaced
    # the serving VM's user_data does not name the tracking version: it stays
    assert instance_user_data(plan)[SERVING] == instance_user_data(d.replan)[SERVING]
    assert plan["planned_values"]["outputs"]["mlflow_version"]["value"] == "3.16.1"
    # doctor's version check follows the form: a VM that refused the upgrade at boot fails it
    assert plan["planned_values"]["outputs"]["doctor_command"]["value"] == \
        d.outputs["doctor_command"].replace("--mlflow-version 3.17.2", "--mlflow-version 3.16.1")


def test_the_tracking_vm_gets_the_image_of_the_version_it_runs(upgraded, deployed):
    d, plan = upgraded
    before, after = (_env(_files(p, TRACKING)["/etc/mlflow/image.env"]) for p in (d.replan, plan))
    released = {version: f"{REGISTRY}/oci-mlflow-tracking:{RELEASE}" + ("" if version == VERSIONS[0] else f"-mlflow{version}")
                for version in VERSIONS}
    assert before["RELEASED_IMAGE"] == released["3.17.2"] and before["MLFLOW_VERSION"] == "3.17.2"
    assert after["RELEASED_IMAGE"] == released["3.16.1"] and after["MLFLOW_VERSION"] == "3.16.1"
    for env in (before, after):
        assert env["MLFLOW_VERSIONS"] == ",".join(VERSIONS)  # this release's own first
        assert {k: v for k, v in env.items() if k.startswith("RELEASED_IMAGE_")} == \
            {f"RELEASED_IMAGE_{v.replace('.', '_')}": image for v, image in released.items()}
    # the serving VM's image.env is as it was: its release's serving image alone
    serving = _env(_files(plan, SERVING)["/etc/mlflow/image.env"])
    assert serving == {"RELEASED_IMAGE": f"{REGISTRY}/oci-mlflow-serving:{RELEASE}"}
    # commands.txt says which MLflow runs and how to upgrade or go back
    commands = _files(plan, TRACKING)["/etc/mlflow/commands.txt"]
    assert "MLflow 3.16.1" in commands and "pip install mlflow==3.16.1" in commands
    assert "sudo mlflow-upgrade plan VERSION" in commands and "/var/lib/mlflow/upgrade-refused" in commands


def test_each_version_s_lock_is_in_the_runtime_bucket_and_named_in_runtime_env(deployed):
    """A VM without the registry builds the version it runs, and mlflow-upgrade any other: the tracking VM's
    runtime.env names a read-only request and the SHA-256 of each version's lock; the serving VM's its own lock."""
    d = deployed("default")
    resources = {r["address"]: r["change"]["after"] for r in d.replan["resource_changes"]}
    env = _env(_files(d.replan, TRACKING)["/etc/mlflow/runtime.env"])
    for version in VERSIONS[1:]:
        suffix = version.replace(".", "_")
        lock = (REPO / "docker" / f"requirements-tracking-{version}.lock").read_bytes()
        par = resources[f'oci_objectstorage_preauthrequest.requirements_lock["tracking-{version}"]']
        obj = resources[f'oci_objectstorage_object.requirements_lock["tracking-{version}"]']
        assert obj["content"].encode() == lock and obj["delete_all_object_versions"] is True
        assert (par["access_type"], par["object_name"]) == ("ObjectRead", f"requirements-tracking-{version}.lock")
        assert env[f"REQUIREMENTS_LOCK_URL_{suffix}"] == par["full_path"]
        assert env[f"REQUIREMENTS_LOCK_SHA256_{suffix}"] == hashlib.sha256(lock).hexdigest()
    assert env["REQUIREMENTS_LOCK_SHA256"] == hashlib.sha256((REPO / "docker/requirements-tracking.lock").read_bytes()).hexdigest()
    serving = _env(_files(d.replan, SERVING)["/etc/mlflow/runtime.env"])
    assert not [name for name in serving if re.search(r"_\d+_\d+_\d+$", name)]


def test_the_tracking_vm_takes_run_commands_and_ocarun_may_sudo_mlflow_upgrade_alone(deployed):
    d = deployed("default")
    instances = {r["address"]: r["change"]["after"] for r in d.replan["resource_changes"] if r["type"] == "oci_core_instance"}
    (agent,) = instances[TRACKING]["agent_config"]
    assert agent["plugins_config"] == [{"desired_state": "ENABLED", "name": "Compute Instance Run Command"}]
    assert instances[SERVING]["agent_config"][0]["plugins_config"] == []
    tracking, serving = _files(d.replan, TRACKING), _files(d.replan, SERVING)
    assert tracking["/usr/local/sbin/mlflow-upgrade"] == (REPO / "userdata/mlflow-upgrade.sh").read_text()
    sudoers = tracking["/etc/sudoers.d/mlflow-upgrade"]
    rules = [line for line in sudoers.splitlines() if line and not line.startswith("#")]
    assert rules == ["Defaults:ocarun !requiretty, env_reset",
                     "ocarun ALL=(root) NOPASSWD: /usr/local/sbin/mlflow-upgrade"]
    assert "/usr/local/sbin/mlflow-upgrade" not in serving and "/etc/sudoers.d/mlflow-upgrade" not in serving
    modes = {e["path"]: e["permissions"] for e in yaml.safe_load(
        static.decode_user_data(instance_user_data(d.replan)[TRACKING]))["write_files"]}
    assert modes["/usr/local/sbin/mlflow-upgrade"] == "0755" and modes["/etc/sudoers.d/mlflow-upgrade"] == "0440"
    assert static.shellcheck_errors(tracking["/usr/local/sbin/mlflow-upgrade"], "mlflow-upgrade") == []


# sudo's Debian package, extracted and never installed (like cloud-init's, see .ci/run):
#   apt-get download sudo && dpkg-deb -x sudo_*.deb .tools/sudo
EXTRACTED_SUDO = REPO / ".tools" / "sudo"


def _visudo() -> tuple[str, dict]:
    extracted = EXTRACTED_SUDO / "usr/sbin/visudo"
    if extracted.exists():
        return str(extracted), dict(os.environ, LD_LIBRARY_PATH=str(EXTRACTED_SUDO / "usr/libexec/sudo"))
    found = shutil.which("visudo") or shutil.which("visudo", path="/usr/sbin:/sbin")
    if not found:
        missing("visudo", "apt-get download sudo && dpkg-deb -x sudo_*.deb .tools/sudo")
    return found, dict(os.environ)


def test_the_sudoers_entry_is_one_visudo_accepts(deployed, tmp_path):
    visudo, env = _visudo()
    sudoers = tmp_path / "mlflow-upgrade"
    sudoers.write_text(_files(deployed("default").replan, TRACKING)["/etc/sudoers.d/mlflow-upgrade"])
    result = subprocess.run([visudo, "-cf", str(sudoers)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    # and the check bites: a broken entry is refused
    sudoers.write_text("ocarun ALL=(root NOPASSWD: /usr/local/sbin/mlflow-upgrade\n")
    broken = subprocess.run([visudo, "-cf", str(sudoers)], capture_output=True, text=True, env=env)
    assert broken.returncode != 0 and "syntax error" in broken.stdout + broken.stderr


def test_the_outputs_name_what_orm_pack_upgrade_works_on(deployed):
    d = deployed("default")
    resources = {r["address"]: r["change"]["after"] for r in d.replan["resource_changes"]}
    assert d.outputs["mlflow_version"] == "3.17.2"
    assert d.outputs["tracking_instance_id"] == resources[TRACKING]["id"]
    assert re.fullmatch(r"ocid1\.instance\.oc1\.iad\.[a-z0-9]+", d.outputs["tracking_instance_id"])
    assert d.outputs["mysql_db_system_id"] == resources["oci_mysql_mysql_db_system.mlflow"]["id"]
    assert re.fullmatch(r"ocid1\.mysqldbsystem\.oc1\.iad\.[a-z0-9]+", d.outputs["mysql_db_system_id"])
    # what checks it afterwards: doctor with the stack's URLs and the version it sets
    assert re.fullmatch(r"https://\d+\.\d+\.\d+\.\d+", d.outputs["mlflow_url"])
    assert re.fullmatch(r"https://\d+\.\d+\.\d+\.\d+:\d+", d.outputs["serving_url"])
    assert d.outputs["doctor_command"] == (f"orm-pack doctor {d.outputs['mlflow_url']} --mlflow-version 3.17.2 "
                                           f"--serving-url {d.outputs['serving_url']}")


def test_on_oke_the_cluster_pulls_the_version_s_image_and_there_is_no_vm(deployed):
    d = deployed("oke")
    assert d.outputs["tracking_instance_id"] == "" and d.outputs["mlflow_version"] == "3.17.2"
    assert d.outputs["serving_url"] == ""  # no serving VM on OKE: doctor checks the load balancer's URL alone
    assert d.outputs["doctor_command"] == f"orm-pack doctor {d.outputs['mlflow_url']} --mlflow-version 3.17.2"
    assert d.outputs["oke_deploy_settings"]["tracking_image"] == f"{REGISTRY}/oci-mlflow-tracking:{RELEASE}"
    plan = d.tf.plan({**tfvars_of(d.inventory), "mlflow_version": "3.15.2"}, "mlflow-3.15.2.bin")
    settings = plan["planned_values"]["outputs"]["oke_deploy_settings"]["value"]
    assert settings["tracking_image"] == f"{REGISTRY}/oci-mlflow-tracking:{RELEASE}-mlflow3.15.2"
    # orm-pack upgrade on OKE reads the same rule from the zip before the apply (orm_pack/stack/images.py)
    zip_data = archive.assemble(REPO).data
    assert images.tracking_image(zip_data, REGISTRY, "3.15.2", VERSIONS[0]) == settings["tracking_image"]
    assert images.tracking_image(zip_data, REGISTRY, "3.17.2", VERSIONS[0]) == \
        d.outputs["oke_deploy_settings"]["tracking_image"]
    assert not [r for r in plan["resource_changes"] if r["change"]["actions"] != ["no-op"]]


def test_a_release_with_digests_pins_each_version_s_image_by_digest(tmp_path):
    """docker/images.json (written by the release workflow) keys the tracking image of a previous MLflow
    `tracking-<version>`: the VM pulls that digest, not a tag that could move; a version without one, its tag."""
    root = repo_layout(tmp_path)
    digests = {"tracking": "sha256:" + "a" * 64, "serving": "sha256:" + "b" * 64, "tracking-3.16.1": "sha256:" + "c" * 64}
    (tmp_path / "docker" / "images.json").write_text(json.dumps(digests))
    tf = Terraform(root)
    tf.init()
    tfvars = {**BASE_TFVARS, "serving_enabled": False, "mlflow_version": "3.16.1"}
    tf.apply(tfvars)
    env = _env(_files(tf.plan(tfvars, "replan.bin"), TRACKING)["/etc/mlflow/image.env"])
    assert env["RELEASED_IMAGE"] == env["RELEASED_IMAGE_3_16_1"] == f"{REGISTRY}/oci-mlflow-tracking@{digests['tracking-3.16.1']}"
    assert env["RELEASED_IMAGE_3_17_2"] == f"{REGISTRY}/oci-mlflow-tracking@{digests['tracking']}"
    assert env["RELEASED_IMAGE_3_15_2"] == f"{REGISTRY}/oci-mlflow-tracking:{RELEASE}-mlflow3.15.2"
    # orm-pack upgrade on OKE reads the same rule from the zip before the apply (orm_pack/stack/images.py)
    zip_data = archive.assemble(tmp_path).data
    assert {v: images.tracking_image(zip_data, REGISTRY, v, VERSIONS[0]) for v in VERSIONS} == \
        {v: env[f"RELEASED_IMAGE_{v.replace('.', '_')}"] for v in VERSIONS}
