"""The Data Science notebook session the stack creates (create_notebook_session), from the plan after
apply: its environment carries what examples/wine/mlflow_connect.py reads (the tracking URL inside the
VCN, the user, the login's Vault secret OCID, the serving URL) and no value; the Git clone brings the
notebook and the helper; the session sits in the notebook subnet."""
import pytest

from .conftest import REPO

pytestmark = pytest.mark.terraform


def after(plan: dict, address: str) -> dict:
    return next(r["change"]["after"] for r in plan["resource_changes"] if r["address"] == address)


def test_the_session_environment_is_what_the_notebook_helper_reads(deployed):
    d = deployed("notebook")
    session = after(d.replan, "oci_datascience_notebook_session.mlflow[0]")
    tracking = after(d.replan, 'oci_core_instance.vm["tracking"]')
    serving = after(d.replan, 'oci_core_instance.vm["serving"]')
    runtime = session["notebook_session_runtime_config_details"][0]
    assert runtime["custom_environment_variables"] == {
        "MLFLOW_TRACKING_URI": f"https://{tracking['private_ip']}",
        "MLFLOW_TRACKING_USERNAME": "mlflow",
        "MLFLOW_TRACKING_PASSWORD_SECRET_OCID": d.outputs["vault_secrets"]["mlflow-login"],
        "MLFLOW_SERVING_URL": f"https://{serving['private_ip']}:1234",
        "MLFLOW_TRACKING_CA_OCID": d.outputs["tls_ca_id"],   # mlflow_connect.py verifies with its certificate
    }
    helper = (REPO / "examples" / "wine" / "mlflow_connect.py").read_text()
    assert all(f'"{name}' in helper for name in runtime["custom_environment_variables"])
    repos = runtime["notebook_session_git_config_details"][0]["notebook_session_git_repo_config_collection"]
    assert [r["url"] for r in repos] == ["https://github.com/oracle-quickstart/oci-mlflow"]
    config = session["notebook_session_config_details"][0]
    assert config["subnet_id"] == after(d.replan, 'oci_core_subnet.mlflow["notebook"]')["id"]
    assert d.outputs["notebook_session_url"] == session["notebook_session_url"]


def test_without_the_option_there_is_no_session(deployed):
    d = deployed("default")
    assert not any(r["type"].startswith("oci_datascience_") for r in d.replan["resource_changes"])
    assert d.outputs["notebook_session_url"] == ""
