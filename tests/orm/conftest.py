"""Fixtures for orm-pack tests: a test API key and OCI config made in the session, the Resource Manager
fake on a free loopback port, and a runner for the real `orm-pack` command."""
import subprocess
import sys
from pathlib import Path

import pytest

from ormfake import ApiKey, ResourceManagerFake, inprocess, write_oci_config
from ormfake.testing import COMPARTMENT, REGION, CliResult, cli_env


@pytest.fixture(scope="session")
def api_key() -> ApiKey:
    return ApiKey.generate()


@pytest.fixture
def oci_config(tmp_path, api_key) -> Path:
    return write_oci_config(tmp_path / "oci", api_key, region=REGION)


@pytest.fixture
def fake(tmp_path, api_key):
    """A running Resource Manager fake that knows the test key and COMPARTMENT; small pages force paging of
    stacks, jobs and outputs. Job logs come in pages of 100, the CLI's page size: a plan of the real stack
    logs thousands of lines, which pages of 5 turned into a thousand signed requests (log paging itself:
    test_modules.py, pages of 3)."""
    server = ResourceManagerFake(tmp_path / "fake", {api_key.key_id: api_key.public_key},
                                 compartments={COMPARTMENT, api_key.tenancy}, page_size=5, log_page_size=100).start()
    yield server
    server.stop()


def _runner(tmp_path, oci_config, fake, in_process: bool):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)

    def run(*args, env=None, timeout=600, retries=False, auth=True) -> CliResult:
        argv = list(args)
        if auth and args and args[0] != "build":
            defaults = {"--config-file": str(oci_config), "--endpoint": fake.url, "--poll-interval": "0.2"}
            if args[0] == "destroy":  # it looks at the artifact bucket first, through Object Storage
                defaults["--object-storage-endpoint"] = fake.url
            if args[0] in ("apply", "outputs"):  # they read the servers' CA certificate from OCI Certificates
                defaults["--certificates-endpoint"] = fake.url
            if not retries:
                defaults["--max-attempts"] = "1"
            for flag, value in defaults.items():
                if flag not in args:
                    argv += [flag, value]
        if in_process:
            return inprocess.run(argv, cli_env(home, env), tmp_path)
        result = subprocess.run([sys.executable, "-m", "orm_pack.cli", *argv], capture_output=True, text=True,
                                timeout=timeout, cwd=tmp_path, env=cli_env(home, env), stdin=subprocess.DEVNULL)
        return CliResult(result.returncode, result.stdout, result.stderr)

    return run


@pytest.fixture
def orm_pack(tmp_path, oci_config, fake):
    """orm_pack(*args, env=None, timeout=...) runs the real CLI's main() against the fake with the test config,
    in this process (ormfake/inprocess.py). Retries are off (--max-attempts 1) unless the test passes its own
    --max-attempts."""
    return _runner(tmp_path, oci_config, fake, in_process=True)


@pytest.fixture
def orm_pack_process(tmp_path, oci_config, fake):
    """The same, as `python -m orm_pack.cli` in a process of its own: the paths a user takes end to end."""
    return _runner(tmp_path, oci_config, fake, in_process=False)
