"""README's Mermaid architecture diagram is valid Mermaid: Mermaid's own parser and renderer, in
Chromium, accept it (GitHub shows a syntax error box otherwise), and it names what the text diagram names."""
import re
from pathlib import Path

import pytest

from harness.tools import TOOLS_DIR, missing, require_binary

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[1]
MERMAID_JS = TOOLS_DIR / "mermaid" / "mermaid.min.js"


def _diagram() -> str:
    blocks = re.findall(r"```mermaid\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 1, "README has one Mermaid diagram"
    return blocks[0]


@pytest.fixture(scope="module")
def mermaid():
    """mermaid(function_body, diagram): run JavaScript with Mermaid loaded, in Chromium; an exception
    comes back as 'error: <message>'."""
    chromium = require_binary("chromium", how="apt-get install chromium")
    if not MERMAID_JS.is_file():
        missing("mermaid.min.js", "bash .ci/run fetches it into .tools/mermaid with npm pack")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_content("<html><body></body></html>")
        page.add_script_tag(path=str(MERMAID_JS))

        def run(function_body: str, diagram: str):
            return page.evaluate(f"async (diagram) => {{ try {{ {function_body} }} catch (e) {{ return 'error: ' + e.message }} }}",
                                 diagram)

        yield run
        browser.close()


def test_the_architecture_diagram_renders(mermaid):
    svg = mermaid("await mermaid.parse(diagram); return (await mermaid.render('architecture', diagram)).svg;", _diagram())
    assert svg.startswith("<svg"), svg
    for label in ("tracking VM", "serving VM", "MySQL HeatWave", "Object Storage", "nginx", "mlflow server",
                  "allowed_ingress_cidr", "HTTPS 443", "HTTPS 1234"):
        assert label in svg, label


def test_the_check_catches_a_broken_diagram(mermaid):
    broken = _diagram().replace("-->", "--->>", 1)
    assert mermaid("await mermaid.parse(diagram); return 'parsed';", broken).startswith("error: Parse error")
