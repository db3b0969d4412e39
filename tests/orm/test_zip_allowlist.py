"""The stack zip is built from an allowlist: secrets lying around a checkout never go in, a link is
refused, a zip given with --zip is held to the same list, and the wheel bundles the same files."""
import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from orm_pack.errors import ExitCode, UserError
from orm_pack.stack import allowlist, archive
from ormfake.testing import FIXTURE_SOURCE, REPO_ROOT, cli_env

KEY_TEXT = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC-planted\n-----END PRIVATE KEY-----\n"
# Files a user may well have in a checkout: none is part of the stack.
PLANTED = [".env", "server.key", "id_ed25519", "api.p12", "credentials", "terraform.tfvars.backup",
           "stack/.env", "stack/server.key", "stack/id_ed25519", "stack/terraform.tfvars.backup", "stack/credentials",
           "stack/api.p12", "userdata/id_ed25519", "userdata/.env", "docker/nginx/tls.key", "docker/.env",
           "docker/credentials", "docker/tracking/server.key", "stack/terraform.tfstate", "stack/prod.tfvars",
           "stack/.terraform/providers/secret", "docker/__pycache__/x.pyc"]


def _copy(source, target):
    shutil.copytree(source, target)
    return target


def _zip_contents(path) -> dict:
    with zipfile.ZipFile(path) as zipped:
        return {name: zipped.read(name) for name in zipped.namelist()}


def test_planted_secret_files_and_a_linked_key_stay_out_of_the_zip(tmp_path):
    key = tmp_path / "home" / ".oci" / "oci_api_key.pem"
    key.parent.mkdir(parents=True)
    key.write_text(KEY_TEXT)
    source = _copy(FIXTURE_SOURCE, tmp_path / "src")
    for name in PLANTED:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(KEY_TEXT)
    (source / "stack" / "oci_api_key.pem").symlink_to(key)  # a link under a name the stack never takes
    clean = archive.build_zip(FIXTURE_SOURCE, tmp_path / "clean.zip")
    dirty = archive.build_zip(source, tmp_path / "dirty.zip")
    assert dirty.files == clean.files
    assert dirty.sha256 == clean.sha256
    assert not any(b"BEGIN PRIVATE KEY" in data for data in _zip_contents(dirty.path).values())


@pytest.mark.parametrize("link", ["stack/extra.tf", "userdata/boot.sh", "docker/tracking/helper.py", "schema.yaml"])
def test_a_link_where_a_stack_file_belongs_is_refused(tmp_path, link):
    key = tmp_path / "oci_api_key.pem"
    key.write_text(KEY_TEXT)
    source = _copy(FIXTURE_SOURCE, tmp_path / "src")
    (source / link).parent.mkdir(parents=True, exist_ok=True)
    (source / link).unlink(missing_ok=True)
    (source / link).symlink_to(key)
    result = subprocess.run([sys.executable, "-m", "orm_pack.cli", "build", str(source), "-o", "out.zip"],
                            capture_output=True, text=True, cwd=tmp_path, env=cli_env(tmp_path), timeout=120)
    assert result.returncode == ExitCode.USAGE, result
    assert result.stderr.strip() == (f"orm-pack: error: {source / link} is a symbolic link (to {key}); the stack zip "
                                     "takes only regular files: copy the file in its place")
    assert not (tmp_path / "out.zip").exists()


def test_a_linked_directory_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "run.sh").write_text(KEY_TEXT)
    source = _copy(FIXTURE_SOURCE, tmp_path / "src")
    (source / "docker" / "extra").symlink_to(elsewhere)
    with pytest.raises(UserError) as error:
        archive.collect(source)
    assert "docker/extra is a symbolic link" in str(error.value)


def test_a_given_zip_is_held_to_the_same_list(tmp_path):
    built = archive.build_zip(FIXTURE_SOURCE, tmp_path / "stack.zip")
    assert archive.read_zip(built.path).sha256 == built.sha256
    smuggled = tmp_path / "smuggled.zip"
    shutil.copy(built.path, smuggled)
    with zipfile.ZipFile(smuggled, "a") as zipped:
        zipped.writestr("docker/nginx/tls.key", KEY_TEXT)
    with pytest.raises(UserError) as error:
        archive.read_zip(smuggled)
    assert "holds 'docker/nginx/tls.key', which a stack zip never carries" in str(error.value)
    escaping = tmp_path / "escaping.zip"
    with zipfile.ZipFile(escaping, "w") as zipped:
        zipped.writestr("../../etc/cron.d/x.tf", "x")
    with pytest.raises(UserError):
        archive.read_zip(escaping)


def test_the_wheel_bundles_exactly_the_allowlisted_files(tmp_path):
    """setup.py's bundle comes from the same allowlist: a secret in the checkout stays out of the wheel."""
    checkout = tmp_path / "checkout"
    for part in ("packager", "stack", "userdata", "docker", "oke"):
        shutil.copytree(REPO_ROOT / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__", "bundle"))
    for name in ("setup.py", "pyproject.toml", "README.md", "schema.yaml", "MANIFEST.in", "VERSION"):
        shutil.copy(REPO_ROOT / name, checkout / name)
    for name in PLANTED:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(KEY_TEXT)
    lib = tmp_path / "lib"
    built = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "-d", str(lib)], cwd=checkout,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    bundle = lib / "orm_pack" / "bundle"
    bundled = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert bundled == [relative for relative, _ in allowlist.select(REPO_ROOT)]
    listing = subprocess.run([sys.executable, "-m", "orm_pack.cli", "build", str(bundle), "-o", "b.zip", "--json"],
                             capture_output=True, text=True, cwd=tmp_path, env=cli_env(tmp_path), timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout)["files"] == [name for name, _ in archive.collect(REPO_ROOT).entries]
