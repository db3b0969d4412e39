"""Nothing a user copies turns certificate checks off: README's code blocks, the examples and the notebook,
and what a VM prints in its commands.txt verify the servers with the deployment's CA
(MLFLOW_TRACKING_SERVER_CERT_PATH). `--insecure` exists only as a warned escape hatch the user types. The
stack's outputs are checked from a plan in tests/stack/test_tls.py."""
import json
import re
from pathlib import Path

import pytest

from harness.readme import code_blocks

REPO = Path(__file__).resolve().parents[1]
TURNS_CHECKS_OFF = re.compile(r"MLFLOW_TRACKING_INSECURE_TLS|--insecure\b|curl\s+(-\w*k\b|--insecure)|verify\s*=\s*False")


def test_no_readme_code_block_turns_certificate_checks_off():
    blocks = code_blocks()
    assert len(blocks) > 10
    offending = [block.first_line for block in blocks if TURNS_CHECKS_OFF.search(block.text)]
    assert offending == []


@pytest.mark.parametrize("path", ["examples/wine/README.md", "examples/wine/train.py", "docker/Dockerfile-training",
                                  "userdata/commands-tracking.txt.tftpl", "userdata/commands-serving.txt.tftpl"])
def test_the_examples_and_the_vms_instructions_verify_the_servers(path):
    assert TURNS_CHECKS_OFF.findall((REPO / path).read_text()) == []


def test_the_notebook_verifies_the_servers():
    notebook = json.loads((REPO / "examples" / "wine" / "train.ipynb").read_text())
    sources = ["".join(cell["source"]) for cell in notebook["cells"]]
    assert [s for s in sources if TURNS_CHECKS_OFF.search(s)] == []


@pytest.mark.parametrize("pattern", ["stack/*.tf", "oke/**/*.yaml", "docker/nginx/*.sh", "userdata/*"])
def test_the_stack_and_the_oke_manifests_tell_no_client_to_skip_checks(pattern):
    """What the stack prints (outputs.tf: notebook_setup on VMs and OKE alike) and what the pods run."""
    files = sorted(REPO.glob(pattern))
    assert files, pattern
    assert {str(f.relative_to(REPO)): TURNS_CHECKS_OFF.findall(f.read_text()) for f in files
            if TURNS_CHECKS_OFF.search(f.read_text())} == {}


def test_mlflow_connect_never_turns_verification_off():
    """It may only clear the switch (MLflow refuses it beside a CA); it never sets it or skips a check."""
    source = (REPO / "examples" / "wine" / "mlflow_connect.py").read_text()
    assert not re.search(r"CERT_NONE|check_hostname\s*=|verify\s*=\s*False|\[\"MLFLOW_TRACKING_INSECURE_TLS\"\]\s*=",
                         source)
    assert all("pop(" in line for line in re.findall(r".*\"MLFLOW_TRACKING_INSECURE_TLS\".*", source))
