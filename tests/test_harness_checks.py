"""The static checkers the project relies on catch what they must, and pass what is clean."""
from pathlib import Path

import pytest

from harness import checkov, static

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def open_ssh_report():
    return checkov.run_checkov(FIXTURES / "checkov" / "open-ssh", "terraform")


@pytest.mark.terraform  # checkov
def test_checkov_flags_ssh_open_to_the_world(open_ssh_report):
    report = open_ssh_report
    assert report.resource_count == 1
    assert checkov.problems(report, skips={}) == [
        "CKV_OCI_19 failed on oci_core_security_list.open_ssh (/main.tf)"
    ]


@pytest.mark.terraform  # checkov
def test_checkov_failure_passes_only_when_skipped_with_a_reason(open_ssh_report, tmp_path):
    report = open_ssh_report
    skip_file = tmp_path / "skips.yaml"
    skip_file.write_text("- id: CKV_OCI_19\n  reason: This fixture exists to show an open SSH rule.\n")
    checkov.assert_clean(report, checkov.load_skip_list(skip_file))
    skip_file.write_text("- id: CKV_OCI_19\n")
    with pytest.raises(AssertionError, match="needs an id and a reason"):
        checkov.load_skip_list(skip_file)


@pytest.mark.terraform  # checkov
def test_a_skip_limited_to_some_resources_still_counts_for_the_others(open_ssh_report, tmp_path):
    report = open_ssh_report
    skip_file = tmp_path / "skips.yaml"
    reason = "This fixture exists to show an open SSH rule."
    skip_file.write_text(f"- id: CKV_OCI_19\n  reason: {reason}\n  resources: ['oci_core_security_list.other*']\n")
    assert checkov.problems(report, checkov.load_skip_list(skip_file)) == [
        "CKV_OCI_19 failed on oci_core_security_list.open_ssh (/main.tf)"]
    skip_file.write_text(f"- id: CKV_OCI_19\n  reason: {reason}\n  resources: ['oci_core_security_list.open_*']\n")
    assert checkov.problems(report, checkov.load_skip_list(skip_file)) == []


@pytest.mark.terraform  # checkov
def test_one_run_over_several_files_reports_each_files_own_findings(tmp_path):
    open_rule = (FIXTURES / "checkov" / "open-ssh" / "main.tf").read_text()
    (tmp_path / "open.tf").write_text(open_rule)
    (tmp_path / "closed.tf").write_text(open_rule.replace('"0.0.0.0/0"', '"10.0.0.0/16"').replace("open_ssh", "closed"))
    reports = checkov.run_checkov_each([tmp_path / "open.tf", tmp_path / "closed.tf"], "terraform")
    assert checkov.problems(reports[tmp_path / "open.tf"], skips={}) == [
        "CKV_OCI_19 failed on oci_core_security_list.open_ssh (/open.tf)"]
    assert checkov.problems(reports[tmp_path / "closed.tf"], skips={}) == []
    assert reports[tmp_path / "closed.tf"].resource_count == 1


@pytest.mark.terraform  # checkov
def test_checkov_parse_error_is_a_failure():
    report = checkov.run_checkov(FIXTURES / "checkov" / "parse-error", "terraform")
    found = checkov.problems(report, skips={})
    assert any(p.startswith("parse error:") and "parse-error/main.tf" in p for p in found), found


@pytest.mark.terraform  # checkov
def test_checkov_crashed_check_is_a_failure():
    report = checkov.CheckovReport(resource_count=3, parsing_errors=[], failed=[], raw=[],
                                   crashed=["Failed to run check CKV_OCI_1 on main.tf:oci_core_vcn.x"])
    assert checkov.problems(report, skips={}) == ["crashed: Failed to run check CKV_OCI_1 on main.tf:oci_core_vcn.x"]


def test_shellcheck_passes_clean_script_and_names_problems():
    assert static.shellcheck_errors((FIXTURES / "static" / "good.sh").read_text()) == []
    found = " ".join(static.shellcheck_errors((FIXTURES / "static" / "bad.sh").read_text(), "bad.sh"))
    assert "SC2086" in found and "SC2045" in found and "bad.sh:" in found


def test_hadolint_passes_clean_dockerfile_and_names_problems():
    assert static.hadolint_errors(FIXTURES / "static" / "Dockerfile.good") == []
    found = " ".join(static.hadolint_errors(FIXTURES / "static" / "Dockerfile.bad"))
    assert "DL3006" in found and "DL3025" in found  # untagged base image, shell-form CMD


def test_nginx_t_passes_valid_config_and_rejects_unknown_directive():
    assert static.nginx_test_errors((FIXTURES / "static" / "nginx.good.conf").read_text()) == []
    found = " ".join(static.nginx_test_errors((FIXTURES / "static" / "nginx.bad.conf").read_text()))
    assert 'unknown directive "retrun"' in found


def test_cloud_init_schema_passes_valid_config_and_names_typos():
    assert static.cloud_init_errors((FIXTURES / "static" / "cloud-config.good.yaml").read_text()) == []
    found = " ".join(static.cloud_init_errors((FIXTURES / "static" / "cloud-config.bad.yaml").read_text()))
    assert "'pakages'" in found and "permisions" in found


def test_user_data_round_trip_through_base64_gzip():
    import base64
    import gzip

    text = (FIXTURES / "static" / "cloud-config.good.yaml").read_text()
    encoded = base64.b64encode(gzip.compress(text.encode())).decode()
    decoded = static.decode_user_data(encoded)
    assert decoded == text
    assert static.written_files(decoded) == {"/etc/oci-mlflow/example": "hello"}
