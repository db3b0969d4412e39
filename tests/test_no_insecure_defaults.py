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
