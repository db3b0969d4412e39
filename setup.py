"""Wheel builds carry the stack: build_py copies the stack's files (the allowlist of
orm_pack/stack/allowlist.py, the same one `orm-pack build` zips) into orm_pack/bundle/, so `orm-pack build`
works after `pip install` without a checkout. Everything else about the distribution is in pyproject.toml."""
import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _allowlist_module():
    # loaded by path: the package's __init__ must not run at build time
    spec = importlib.util.spec_from_file_location("_allowlist", ROOT / "packager" / "orm_pack" / "stack" / "allowlist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithStack(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "orm_pack" / "bundle"
        if target.exists():
            shutil.rmtree(target)
        for relative, path in _allowlist_module().select(ROOT):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)


setup(cmdclass={"build_py": BuildPyWithStack})
