"""Install the provider doubles (oracle/oci, and hashicorp/time's time_sleep) for Terraform as a
filesystem mirror, and the environment to use them.

The mirror holds a launcher script per provider, named like a provider binary; its shebang is this
interpreter, which has the PyPI package `tf`. Nothing is downloaded: the CLI config allows no other
installation.
"""
import hashlib
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from . import forkserver, time_double
from .double import memory, propagation
from .double.schema import PROVIDER_VERSION
from .objectstore import ENV_VAR as OBJECT_STORE_ENV

TESTS_DIR = Path(__file__).resolve().parents[1]

_LAUNCHER = """#!{python}
import sys
sys.path.insert(0, {tests_dir!r})
from harness.forkserver import launch
launch({module!r})
"""
# (registry address, version, binary name, module serving it)
PROVIDERS = (
    ("registry.terraform.io/oracle/oci", PROVIDER_VERSION, "terraform-provider-oci", "harness.double.provider"),
    (time_double.PROVIDER_ADDR, time_double.PROVIDER_VERSION, "terraform-provider-time", "harness.time_double"),
)

_CLI_CONFIG = """provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["registry.terraform.io/oracle/oci", "registry.terraform.io/hashicorp/time"]
  }}
}}
disable_checkpoint = true
"""


def _platform() -> str:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    return f"{sys.platform}_{arch}"


def mirror_dir() -> Path:
    """One mirror per interpreter and checkout, built on first use and reused afterwards."""
    key = hashlib.sha256(f"{sys.executable}\0{TESTS_DIR}\0{PROVIDERS}\0{_LAUNCHER}".encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / f"oci-double-{os.getuid()}-{key}"
    cli_config = root / "terraformrc"
    if not cli_config.exists():
        _build(root)
    return root


def _build(root: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    for address, version, binary, module in PROVIDERS:
        plugin_dir = staging / "mirror" / address / version / _platform()
        plugin_dir.mkdir(parents=True)
        launcher = plugin_dir / f"{binary}_v{version}"
        launcher.write_text(_LAUNCHER.format(python=sys.executable, tests_dir=str(TESTS_DIR), module=module))
        launcher.chmod(0o755)
    (staging / "home").mkdir()
    (staging / "terraformrc").write_text(_CLI_CONFIG.format(mirror=root / "mirror"))
    try:
        staging.rename(root)
    except OSError:  # another process built it first
        if not (root / "terraformrc").exists():
            raise


def terraform_env(workdir: Path, fixtures: dict | None = None, base: dict | None = None) -> dict:
    """Environment for running Terraform offline with the double; `fixtures` override data sources."""
    root = mirror_dir()
    env = dict(base if base is not None else os.environ)
    for name in ("TF_LOG", "TF_LOG_PATH", "TF_PLUGIN_CACHE_DIR", "TF_CLI_ARGS"):
        env.pop(name, None)
    env.update(
        TF_CLI_CONFIG_FILE=str(root / "terraformrc"),
        CHECKPOINT_DISABLE="1",
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        HOME=str(root / "home"),  # the `tf` package keeps its plugin TLS certificate under ~/.cache
    )
    # Buckets and their objects outlive one Terraform run (the double is a new process each time).
    env.setdefault(OBJECT_STORE_ENV, str(Path(workdir) / ".oci-double-objects.json"))
    # When identity objects were written, for the delays before OCI lets them be used; the delays and
    # the stack's waits (time_sleep) both run at a twentieth of the cloud's pace.
    env.setdefault(memory.STATE_ENV, str(Path(workdir) / ".oci-double-written.json"))
    env.setdefault(propagation.SCALE_ENV, "0.05")
    env[forkserver.ENV_VAR] = forkserver.address()
    if fixtures:
        path = Path(workdir) / ".oci-double-fixtures.json"
        path.write_text(json.dumps(fixtures))
        env["OCI_DOUBLE_FIXTURES"] = str(path)
    else:
        env.pop("OCI_DOUBLE_FIXTURES", None)
    return env
