"""Fixtures for the stack tests: a copy of the stack in both layouts, planned/applied once per profile.

Each deployment profile is a YAML inventory in inventories/ (tfvars in; counts, values, outputs out).
Terraform runs in copies under tmp_path so no .terraform/ or state lands in the repository.
"""
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from harness import static
from harness.inventory import load_inventory
from harness.terraform import PlannedValues, Terraform

REPO = Path(__file__).resolve().parents[2]
INVENTORIES = Path(__file__).parent / "inventories"
PROFILES = sorted(p.stem for p in INVENTORIES.glob("*.yaml"))

# What Resource Manager or a Terraform CLI user always provides (each profile adds its own).
BASE_TFVARS = {
    "tenancy_ocid": "ocid1.tenancy.oc1..aaaaaaaahxusqrskr7qsgyqq4dgoaaymjyom23m4mui2oapgdbrmklngzzia",
    "compartment_ocid": "ocid1.compartment.oc1..aaaaaaaahbi7m5qn5a66envartcbaj47n6h63dko6v2cc7hpv7njg7ysvevq",
    "region": "us-ashburn-1",
    "current_user_ocid": "ocid1.user.oc1..aaaaaaaaoi4kh4e3gb2furbecjzwxmh242soyt7qmucjp2vyakeczu7oxlsa",
    "allowed_ingress_cidr": "203.0.113.7/32",
    "mysql_admin_password": "Sup3r-Secret-pw",
    "mlflow_password": "correct-horse-battery",
}


def repo_layout(dest: Path) -> Path:
    """The repository layout: stack/ next to schema.yaml, userdata/ and docker/. Returns the root module."""
    for name in ("stack", "userdata", "docker"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    for name in ("schema.yaml", "VERSION"):
        shutil.copy(REPO / name, dest / name)
    return dest / "stack"


def flat_layout(dest: Path) -> Path:
    """The Resource Manager zip layout: stack/*.tf flattened next to schema.yaml, userdata/, docker/."""
    dest.mkdir(parents=True, exist_ok=True)
    for tf in (REPO / "stack").glob("*.tf"):
        shutil.copy(tf, dest / tf.name)
    for name in ("userdata", "docker"):
        shutil.copytree(REPO / name, dest / name)
    for name in ("schema.yaml", "VERSION"):
        shutil.copy(REPO / name, dest / name)
    return dest


def tfvars_of(inventory: dict) -> dict:
    return {**BASE_TFVARS, **(inventory.get("tfvars") or {})}


@dataclass
class Deployed:
    """A profile after plan, apply and a second plan."""
    name: str
    inventory: dict
    tf: Terraform
    first_plan: PlannedValues
    outputs: dict          # after apply
    replan: dict           # plan JSON of the second plan (every value known)
    replan_exit_code: int  # `plan -detailed-exitcode` after apply: 0 = no changes


def _deploy(profile: str, workdir: Path) -> Deployed:
    inventory = load_inventory(INVENTORIES / f"{profile}.yaml")
    tf = Terraform(repo_layout(workdir), fixtures=inventory.get("fixtures"))
    tf.init()
    tfvars = tfvars_of(inventory)
    first = tf.plan_summary(tfvars)
    tf.apply(tfvars, plan_file="plan.bin")
    outputs = tf.output()
    exit_code = tf.plan_exit_code(tfvars).returncode
    replan = tf.plan(tfvars, "replan.bin")
    return Deployed(profile, inventory, tf, first, outputs, replan, exit_code)


# A run with at least this many tests on deployed profiles uses all of them: deploy them two at a time.
PREPARE_ALL_FROM = 20


@pytest.fixture(scope="session")
def deployed(request, tmp_path_factory):
    """Plan, apply and re-plan each profile once per session (the slow part, shared by tests). In a run
    with many such tests, every profile is deployed in the background, two at a time, while other tests
    run: the suite is serial and uses one of the machine's cores on average."""
    workdirs = {profile: tmp_path_factory.mktemp(f"stack-{profile}") for profile in PROFILES}
    users = sum("deployed" in getattr(item, "fixturenames", ()) for item in request.session.items)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="deploy") as pool:
        futures = {}

        def get(profile: str) -> Deployed:
            if profile not in futures:
                futures[profile] = pool.submit(_deploy, profile, workdirs[profile])
            return futures[profile].result()

        if users >= PREPARE_ALL_FROM:
            for profile in PROFILES:
                futures[profile] = pool.submit(_deploy, profile, workdirs[profile])
        yield get
        for future in futures.values():
            future.cancel()


def instance_user_data(plan: dict) -> dict:
    """address -> base64 user_data of every oci_core_instance in a plan (all known after apply)."""
    return {
        r["address"]: r["change"]["after"]["metadata"]["user_data"]
        for r in plan["resource_changes"]
        if r["type"] == "oci_core_instance" and r["change"]["after"]
    }


def runtime_objects(plan: dict) -> dict:
    """role -> the content of the runtime bucket's runtime-<role>.json object (runtime.tf), as uploaded."""
    return {
        r["index"]: r["change"]["after"]["content"]
        for r in plan["resource_changes"]
        if r["type"] == "oci_objectstorage_object" and r["name"] == "runtime_files" and r["change"]["after"]
    }


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


SECRET_OCID = re.compile(r"ocid1\.vaultsecret\.[A-Za-z0-9._-]+")
OWN_LOGINS = {"serving": ("serving-login", "mlflow-serving"), "notebook": ("notebook-login", "mlflow-notebook")}


def _env_files(user_data: str) -> dict[str, dict[str, str]]:
    files = static.written_files(static.decode_user_data(user_data))
    return {path.rsplit("/", 1)[1]: dict(line.split("=", 1) for line in text.splitlines() if line)
            for path, text in files.items() if path.startswith("/etc/mlflow/") and path.endswith(".env")}


def assert_only_own_logins(resources: list, outputs: dict) -> set:
    """With per-person users, from an applied state's resources (every OCID known): the serving VM's and the
    notebook session's IAM statements and settings name their own login's secret alone, never the break-glass
    admin's (mlflow-login) nor the MySQL administrator's, and the tracking server is told to make those
    users with those secrets. Returns the roles it found."""
    values = {r["address"]: r["values"] for r in resources}
    secrets = outputs["vault_secrets"]
    groups = {r["index"]: r["values"]["id"] for r in resources
              if r["address"].startswith("oci_identity_dynamic_group.vm[")}
    tracking = _env_files(values['oci_core_instance.vm["tracking"]']["metadata"]["user_data"])["tracking.env"]
    settings_of = {}
    if 'oci_core_instance.vm["serving"]' in values:
        serving = _env_files(values['oci_core_instance.vm["serving"]']["metadata"]["user_data"])
        assert "MLFLOW_UI_PASSWORD_SECRET_OCID" not in serving["proxy.env"]  # it asks the tracking server
        settings_of["serving"] = {**serving["serving.env"], **serving["proxy.env"]}
    if "oci_datascience_notebook_session.mlflow[0]" in values:
        settings_of["notebook"] = values["oci_datascience_notebook_session.mlflow[0]"][
            "notebook_session_runtime_config_details"][0]["custom_environment_variables"]
    for role, settings in settings_of.items():
        secret, username = OWN_LOGINS[role]
        own = secrets[secret]
        assert own not in (secrets["mlflow-login"], secrets["mysql-admin"])
        statements = [s for s in outputs["iam_statements"] if f"dynamic-group id {groups[role]} " in s]
        assert statements and set(SECRET_OCID.findall(" ".join(statements))) == {own}, statements
        assert set(SECRET_OCID.findall(json.dumps(settings))) == {own}, settings
        assert (settings["MLFLOW_TRACKING_USERNAME"], settings["MLFLOW_TRACKING_PASSWORD_SECRET_OCID"]) == (username, own)
        key = role.upper()  # the tracking server makes that user with that secret's current version
        assert (tracking[f"MLFLOW_{key}_USERNAME"], tracking[f"MLFLOW_{key}_PASSWORD_SECRET_OCID"]) == (username, own)
    for role in set(OWN_LOGINS) - set(settings_of):
        assert f"MLFLOW_{role.upper()}_USERNAME" not in tracking and OWN_LOGINS[role][0] not in secrets
    return set(settings_of)

