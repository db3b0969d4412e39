"""`orm-pack build`: a deterministic, validated stack zip that Terraform can plan from its root."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.terraform import Terraform
from orm_pack.errors import ExitCode, UserError
from orm_pack.stack import archive
from ormfake.testing import FIXTURE_SOURCE, REPO_ROOT, cli_env

TENANCY_A = "ocid1.tenancy.oc1..aaaaaaaatc6d2ao5wzjmocrwhoqgne346psyd72nrm4kjehql47gtwdgvepa"
COMPARTMENT_A = "ocid1.compartment.oc1..aaaaaaaaajzyzsqgluavr6uwglc6pyvpnqb2x5pizc6iij652css7hs7yn4a"

AUTO_VARS = {"tenancy_ocid": TENANCY_A, "compartment_ocid": COMPARTMENT_A,
             "region": "us-phoenix-1", "current_user_ocid": "ocid1.user.oc1..aaaaaaaavqnfqvr7plhc45rnopyyoid2vz2kqb46lqrrtyoa6uqh6lr6glcq"}


def _sources():
    """The fixture stack always; the project's own stack once it exists in the checkout."""
    sources = [pytest.param(FIXTURE_SOURCE, id="fixture")]
    if archive.is_source(REPO_ROOT) and list((REPO_ROOT / "stack").glob("*.tf")):
        sources.append(pytest.param(REPO_ROOT, id="project"))
    return sources


def build(*args, cwd: Path, home: Path):
    return subprocess.run([sys.executable, "-m", "orm_pack.cli", "build", *args], capture_output=True, text=True,
                          cwd=cwd, env=cli_env(home), timeout=120)


@pytest.mark.parametrize("source", _sources())
def test_two_builds_are_byte_identical(source, tmp_path):
    copy = tmp_path / "src"
    for part in ("stack", "userdata", "docker"):
        if (source / part).is_dir():
            shutil.copytree(source / part, copy / part)
    shutil.copy(source / "schema.yaml", copy / "schema.yaml")
    source = copy
    first = build(str(source), "-o", str(tmp_path / "a.zip"), "--json", cwd=tmp_path, home=tmp_path)
    assert first.returncode == 0, first.stderr
    os.utime(next(Path(source, "stack").glob("*.tf")), (1e9, 1e9))  # another mtime must not change the zip
    second = build(str(source), "-o", str(tmp_path / "b.zip"), "--json", cwd=tmp_path, home=tmp_path)
    assert second.returncode == 0, second.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["sha256"] == b["sha256"] == hashlib.sha256((tmp_path / "b.zip").read_bytes()).hexdigest()
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert a["size"] <= archive.MAX_ZIP_BYTES


def test_zip_root_layout_modes_and_dates(tmp_path):
    built = archive.build_zip(FIXTURE_SOURCE, tmp_path / "stack.zip")
    with zipfile.ZipFile(built.path) as zipped:
        infos = zipped.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names) == list(built.files)
    assert {"main.tf", "outputs.tf", "variables.tf", "versions.tf", "schema.yaml"} <= set(names)  # zip root
    assert "userdata/cloud-init.tftpl" in names and "docker/Dockerfile-tracking" in names
    assert not any(n.startswith("stack/") for n in names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes["docker/entrypoint.sh"] == 0o755 and modes["main.tf"] == 0o644


def test_cli_prints_files_size_and_sha256(tmp_path):
    result = build(str(FIXTURE_SOURCE), "-o", str(tmp_path / "out" / "s.zip"), cwd=tmp_path, home=tmp_path)
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256((tmp_path / "out" / "s.zip").read_bytes()).hexdigest()
    assert f"sha256  {digest}" in result.stdout
    assert "  main.tf" in result.stdout and "(9 files," in result.stdout


@pytest.mark.terraform
@pytest.mark.parametrize("source", _sources())
def test_the_zip_plans_from_its_root(source, tmp_path, terraform_binary):
    built = archive.build_zip(source, tmp_path / "stack.zip")
    root = tmp_path / "root"
    with zipfile.ZipFile(built.path) as zipped:
        zipped.extractall(root)
    from orm_pack.stack.declarations import read_variables

    declared = read_variables(root)
    tfvars = {k: v for k, v in AUTO_VARS.items() if k in declared}
    for name, variable in declared.items():  # what a user must type in the form
        if variable.required and name not in tfvars:
            tfvars[name] = ("Zip-Test-Passw0rd#2024" if "password" in name else
                            "203.0.113.0/24" if "cidr" in name else "zip-test")
    tf = Terraform(root, binary=terraform_binary)
    tf.init()
    summary = tf.plan_summary(tfvars)
    assert summary.counts, "the plan from the zip root creates nothing"
    assert all(actions == ["create"] for actions in summary.actions.values())


def test_zip_over_the_limit_is_refused_and_nothing_is_written(tmp_path):
    output = tmp_path / "big.zip"
    with pytest.raises(UserError) as error:
        archive.build_zip(FIXTURE_SOURCE, output, max_bytes=1000)
    assert error.value.exit_code == ExitCode.TOO_LARGE
    assert "over Resource Manager's" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_a_12_mb_stack(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(FIXTURE_SOURCE, source)
    # a file the stack takes (the allowlist leaves any other out), incompressible
    (source / "docker" / "entrypoint.sh").write_bytes(os.urandom(12 * 1024 * 1024))
    result = build(str(source), "-o", str(tmp_path / "out.zip"), cwd=tmp_path, home=tmp_path)
    assert result.returncode == ExitCode.TOO_LARGE, result.stderr
    assert "11 MB limit" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.zip").exists()
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s.replace("type: boolean", "type: bool"), "variables.enable_serving.type: unknown type 'bool'"),
    (lambda s: s.replace("        - ${enable_serving}\n", "        - ${enable_serving_vm}\n"),
     "variables.mlflow_password.visible names 'enable_serving_vm', which is not a variable"),
    (lambda s: s.replace("  mlflow_url:\n    type: link", "  mlflow_url:\n    type: string"),
     "primaryOutputButton names 'mlflow_url', whose type is 'string'"),
    (lambda s: s.replace("      - extra_tags\n", "").replace("  extra_tags:\n    type: string\n    title: Extra tags "
                                                                 "(JSON map)\n    visible: false\n", ""),
     "Terraform variable 'extra_tags' (variables.tf) is not in schema.yaml"),
    (lambda s: s.replace("      - mlflow_password\n", "      - mlflow_password\n      - db_shape\n"),
     "'db_shape' is not a Terraform variable"),
    # the console checks the form against Oracle's meta schema, where an output's `visible` is a boolean
    (lambda s: s.replace("    title: Serving IP\n", "    title: Serving IP\n    visible: enable_serving\n"),
     "outputs.serving_public_ip.visible: 'enable_serving' is not of type 'boolean' (Resource Manager's meta "
     "schema: definitions.baseOutput.properties.visible.type)"),
])
def test_schema_problems_stop_the_build(tmp_path, edit, expected):
    source = tmp_path / "src"
    shutil.copytree(FIXTURE_SOURCE, source)
    schema = source / "schema.yaml"
    schema.write_text(edit(schema.read_text()))
    result = build(str(source), "-o", str(tmp_path / "out.zip"), cwd=tmp_path, home=tmp_path)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.zip").exists()


def test_source_that_is_not_a_stack_is_a_clear_error(tmp_path):
    result = build(str(tmp_path), cwd=tmp_path, home=tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert "has no stack/ directory and schema.yaml" in result.stderr


def test_default_source_is_the_current_directory_else_this_checkout(tmp_path):
    assert archive.find_source(None, cwd=FIXTURE_SOURCE) == FIXTURE_SOURCE
    # from a directory that is not a stack source, the checkout this (editable) package runs from
    assert archive.find_source(None, cwd=tmp_path) == REPO_ROOT


def check(*args, cwd: Path, home: Path):
    return subprocess.run([sys.executable, "-m", "orm_pack.cli", "check", *args], capture_output=True, text=True,
                          cwd=cwd, env=cli_env(home), timeout=120)


def test_check_passes_a_built_zip_and_refuses_one_whose_form_the_console_would_refuse(tmp_path):
    """`orm-pack check` (the release's last step before it publishes) reads the zip as Resource Manager
    does: a zip whose schema.yaml gives an output a variable as `visible` is refused, naming the path and
    the meta schema's rule, with exit code 2."""
    built = archive.build_zip(FIXTURE_SOURCE, tmp_path / "good.zip")
    good = check(str(built.path), cwd=tmp_path, home=tmp_path)
    assert good.returncode == 0, good.stderr
    assert f"{built.path}: {len(built.files)} files" in good.stdout and built.sha256 in good.stdout

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(built.path) as source, zipfile.ZipFile(bad, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "schema.yaml":
                data = data.replace(b"    title: Tracking IP\n", b"    title: Tracking IP\n    visible:\n      eq: [enable_serving, x]\n")
            target.writestr(info, data)
    refused = check(str(bad), cwd=tmp_path, home=tmp_path)
    assert refused.returncode == ExitCode.USAGE, refused.stdout + refused.stderr
    assert ("outputs.tracking_public_ip.visible: {'eq': ['enable_serving', 'x']} is not of type 'boolean' "
            "(Resource Manager's meta schema: definitions.baseOutput.properties.visible.type)") in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    missing = check(str(tmp_path / "none.zip"), cwd=tmp_path, home=tmp_path)
    assert missing.returncode == ExitCode.USAGE and "ZIP " in missing.stderr and "none.zip" in missing.stderr
