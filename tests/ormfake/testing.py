"""Constants and helpers shared by orm-pack's tests (tests/orm)."""
import os
from dataclasses import dataclass
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS_DIR.parent
FIXTURE_SOURCE = TESTS_DIR / "orm" / "fixtures" / "stack-small"
COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaakozzphxxae36lujiyjrnhbra6k4x7k4umhbzq3c2bez2uafvjuaq"
REGION = "us-phoenix-1"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def __str__(self):
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def cli_env(home: Path, extra: dict | None = None) -> dict:
    """A clean environment for the CLI: no OCI_CLI_* of the developer, HOME without ~/.oci, wide plain output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCI_CLI_")}
    env.update(HOME=str(home), COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env
