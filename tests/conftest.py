"""Fixtures shared by every test: Terraform with the oci provider double, plan summaries, inventories.

A test module chooses the configuration it plans by overriding `tf_config_dir` (default: stack/).
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from harness import lanes, needs
from harness.terraform import Terraform
from harness.tools import terraform_binaries

REPO_ROOT = Path(__file__).resolve().parents[1]


# `pytest -n 2` (README's command): the runtime and the plans in two lanes (harness/lanes.py).
@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    config = node.config
    if not hasattr(config, "lanes_file"):
        config.lanes_file = Path(tempfile.mkdtemp(prefix="pytest-lanes-")) / "lanes.json"
    node.workerinput[lanes.WORKER_INPUT_KEY] = str(config.lanes_file)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    return lanes.LaneScheduling(config, log, config.lanes_file)


def pytest_collection_modifyitems(config, items):
    path = getattr(config, "workerinput", {}).get(lanes.WORKER_INPUT_KEY)
    if path:
        lanes.write_lanes(path, items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    needs.take()  # what the previous test used is not this one's


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that ran Terraform or a runtime server without its marker fails at teardown: the fast lane
    must not gain it unnoticed."""
    report = (yield).get_result()
    if call.when == "teardown" and report.passed:
        unmarked = sorted(m for m in needs.take() if item.get_closest_marker(m) is None)
        if unmarked:
            report.outcome = "failed"
            report.longrepr = (f"{item.nodeid} used {' and '.join(unmarked)} without the marker: add "
                               + ", ".join(f"@pytest.mark.{m}" for m in unmarked) + " (or to its module's pytestmark)")


@pytest.fixture(autouse=True)
def no_client_setting_leaks():
    """A test that leaves an MLflow client setting in this process's environment changes what every later test
    on the worker logs in as (`monkeypatch.setenv`, or a subprocess, instead)."""
    before = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    after = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    if after != before:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        pytest.fail(f"the test left MLflow settings changed in os.environ: {', '.join(changed)}")


def pytest_generate_tests(metafunc):
    # Terraform tests run on the terraform on PATH (1.5 or newer: harness/tools.py).
    if "terraform_binary" in metafunc.fixturenames:
        binaries = terraform_binaries()
        metafunc.parametrize("terraform_binary", [path for _, path in binaries],
                             ids=[f"tf{label}" for label, _ in binaries], scope="module")


@pytest.fixture(scope="module")
def tf_config_dir() -> Path:
    return REPO_ROOT / "stack"


def copy_config(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "plan.bin"))
    return target


@pytest.fixture(scope="module")
def planned_config(tf_config_dir, terraform_binary, tmp_path_factory) -> Terraform:
    """An initialised working copy of the module's configuration, shared by its plan-only tests."""
    workdir = copy_config(tf_config_dir, tmp_path_factory.mktemp("plan") / "config")
    tf = Terraform(workdir, binary=terraform_binary)
    tf.init()
    return tf


@pytest.fixture(scope="module")
def plan_summary(planned_config):
    """plan_summary(tfvars) -> (values by address, counts by type, outputs), from a real plan."""

    def _plan(tfvars: dict | None = None):
        summary = planned_config.plan_summary(tfvars)
        return summary.values, summary.counts, summary.outputs

    return _plan


@pytest.fixture
def fresh_config(tf_config_dir, terraform_binary, tmp_path):
    """fresh_config(fixtures=None) -> an initialised private working copy (for apply/destroy tests)."""

    def _make(fixtures: dict | None = None) -> Terraform:
        tf = Terraform(copy_config(tf_config_dir, tmp_path / "config"), binary=terraform_binary, fixtures=fixtures)
        tf.init()
        return tf

    return _make
