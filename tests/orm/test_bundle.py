"""A user who installed orm-pack with pip (no checkout) builds the same stack zip: the wheel's
build_py (setup.py) bundles stack/, schema.yaml, userdata/ and docker/ into orm_pack/bundle."""
import json
import subprocess
import sys

from ormfake.testing import REPO_ROOT, cli_env


def test_installed_package_builds_the_bundled_stack(tmp_path):
    lib = tmp_path / "lib"
    built = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "-d", str(lib)], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    assert (lib / "orm_pack" / "bundle" / "schema.yaml").is_file()
    assert list((lib / "orm_pack" / "bundle" / "stack").glob("*.tf"))
    elsewhere = tmp_path / "elsewhere"  # not a checkout: the bundle is the only stack around
    elsewhere.mkdir()
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from orm_pack.cli import main; "
            "sys.exit(main(sys.argv[2:]))")
    from_bundle = subprocess.run([sys.executable, "-c", code, str(lib), "build", "-o", "b.zip", "--json"],
                                 cwd=elsewhere, capture_output=True, text=True, timeout=120,
                                 env=cli_env(tmp_path, {"PYTHONPATH": ""}))
    assert from_bundle.returncode == 0, from_bundle.stderr
    bundle_doc = json.loads(from_bundle.stdout)
    assert bundle_doc["source"] == str(lib / "orm_pack" / "bundle")
    from_checkout = subprocess.run([sys.executable, "-m", "orm_pack.cli", "build", str(REPO_ROOT), "-o", "c.zip",
                                    "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                                   env=cli_env(tmp_path))
    assert from_checkout.returncode == 0, from_checkout.stderr
    assert bundle_doc["sha256"] == json.loads(from_checkout.stdout)["sha256"]
