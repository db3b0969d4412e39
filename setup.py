"""Wheel builds carry the stack: build_py copies stack/, schema.yaml, userdata/ and docker/ into
orm_pack/bundle/, so `orm-pack build` works after `pip install` without a checkout.
Everything else about the distribution is in pyproject.toml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLE = ("stack", "schema.yaml", "userdata", "docker")
# the same things orm_pack.zipbuild leaves out of the stack zip
IGNORE = shutil.ignore_patterns(
    ".terraform", ".git", "__pycache__", ".pytest_cache", ".tfcache", "*.tfstate", "*.tfstate.*",
    ".terraform.lock.hcl", "*.tfplan", "*.tfvars", "*.tfvars.json", "crash.log", "*~", "*.swp", "*.swo", ".#*",
    "#*#", ".DS_Store", "*.pyc", "*.pem", "oci_api_key*",
)


class BuildPyWithStack(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "orm_pack" / "bundle"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in BUNDLE:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=IGNORE)
            elif source.is_file():
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildPyWithStack})
