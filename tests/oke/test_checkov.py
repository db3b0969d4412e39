"""checkov's kubernetes checks on the manifests exactly as `orm-pack oke deploy` renders them."""
import pytest

from harness import checkov

from .conftest import HERE

pytestmark = pytest.mark.terraform  # checkov from its own venv, like the stack's scans


def test_rendered_manifests_pass_checkovs_kubernetes_checks(rendered, tmp_path):
    (tmp_path / "mlflow.yaml").write_text(rendered[0])
    report = checkov.run_checkov(tmp_path, "kubernetes")
    assert report.resource_count >= 15
    checkov.assert_clean(report, checkov.load_skip_list(HERE / "checkov-skips.yaml"))
