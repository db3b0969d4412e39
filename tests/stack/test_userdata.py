"""The VMs' cloud-init, decoded from the plan exactly as OCI hands it to the instance, checked with
the tools that would reject it on the VM: cloud-init's schema, shellcheck, nginx -t, hadolint."""
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import static

from .conftest import PROFILES, REPO, instance_user_data

pytestmark = pytest.mark.terraform

ROLES = {'oci_core_instance.vm["tracking"]': "tracking", 'oci_core_instance.vm["serving"]': "serving"}


def user_data_of(deployed, profile):
    """role -> (base64 user_data, decoded cloud-config text), from the plan after apply (all known)."""
    d = deployed(profile)
    return {ROLES[a]: (ud, static.decode_user_data(ud)) for a, ud in instance_user_data(d.replan).items()}


@pytest.mark.parametrize("profile", PROFILES)
def test_user_data_is_gzip_base64_far_under_the_metadata_limit(deployed, profile):
    """OCI keeps an instance's metadata (user_data, the SSH keys, …) under 32,000 bytes in total: 28 KiB
    for user_data leaves room for SSH keys and a few settings more. Files beyond that go through the
    runtime bucket (runtime.tf), as the requirement locks do."""
    for role, (encoded, text) in user_data_of(deployed, profile).items():
        assert len(encoded) < 28 * 1024, f"{role}: {len(encoded)} bytes of user_data (OCI limit 32,000 bytes)"
        assert len(text) > 2 * len(encoded), f"{role}: not compressed"
        assert text.startswith("#cloud-config\n")


@pytest.mark.parametrize("profile", PROFILES)
def test_user_data_passes_cloud_init_schema(deployed, profile):
    for role, (_, text) in user_data_of(deployed, profile).items():
        assert static.cloud_init_errors(text) == [], role


@pytest.mark.parametrize("profile", PROFILES)
def test_every_script_in_user_data_passes_shellcheck(deployed, profile):
    for role, (_, text) in user_data_of(deployed, profile).items():
        scripts = {p: c for p, c in static.written_files(text).items() if p.endswith(".sh")}
        assert set(scripts) >= {"/usr/local/sbin/mlflow-bootstrap.sh", "/opt/mlflow/src/docker/nginx/render.sh"}
        for path, content in scripts.items():
            assert static.shellcheck_errors(content, path) == [], f"{role}: {path}"


def test_user_data_writes_the_runtime_files_unchanged(deployed):
    for role, (_, text) in user_data_of(deployed, "default").items():
        files = static.written_files(text)
        shipped = {p[len("/opt/mlflow/src/"):]: c for p, c in files.items() if p.startswith("/opt/mlflow/src/")}
        assert f"docker/Dockerfile-{role}" in shipped
        for rel, content in shipped.items():
            assert content == (REPO / rel).read_text(), f"{role}: {rel} differs from the repository"
        config = yaml.safe_load(text)
        # cloud-init runs runcmd once per instance: it only starts the unit that retries the setup
        assert config["runcmd"] == [["systemctl", "daemon-reload"],
                                    ["systemctl", "enable", f"mlflow-bootstrap@{role}.service"],
                                    ["systemctl", "start", "--no-block", f"mlflow-bootstrap@{role}.service"]]
        modes = {e["path"]: e["permissions"] for e in config["write_files"]}
        assert modes[f"/etc/mlflow/{role}.env"] == "0600"
        assert "/etc/mlflow/ui-password" not in modes  # the login is read from Vault (mlflow-refresh-login)
        assert modes["/usr/local/sbin/mlflow-bootstrap.sh"] == "0755"
        unit = files[f"/etc/systemd/system/mlflow-{role}.service"]
        assert "Restart=on-failure" in unit and f"--env-file /etc/mlflow/{role}.env" in unit


def _env(text):
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_tracking_settings_point_at_the_stack_resources(deployed):
    d = deployed("default")
    files = static.written_files(user_data_of(deployed, "default")["tracking"][1])
    env = _env(files["/etc/mlflow/tracking.env"])
    out = d.outputs
    secrets = out["vault_secrets"]
    assert env["MLFLOW_DB_HOST"] == out["mysql_private_ip"]
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == out["artifact_store"] == \
        f"oci://{out['bucket_name']}@{out['object_storage_namespace']}/artifacts"
    assert env["MLFLOW_OCI_AUTH"] == "instance_principal"
    assert not any(name.startswith(("AWS_", "MLFLOW_S3_")) for name in env)  # no key with the oci:// store
    assert env["MYSQL_ADMIN_USER"] == "mlflowadmin"
    assert env["MYSQL_ADMIN_PASSWORD_SECRET_OCID"] == secrets["mysql-admin"]
    assert env["MLFLOW_DB_PASSWORD_SECRET_OCID"] == secrets["mlflow-db"]
    assert env["MLFLOW_HOST"] == "127.0.0.1" and env["MLFLOW_WORKERS"] == "2"
    proxy = _env(files["/etc/mlflow/proxy.env"])
    assert proxy["PROXY_LISTEN_PORT"] == "443" and proxy["PROXY_UPSTREAM"] == "127.0.0.1:5000"
    assert proxy["MLFLOW_UI_PASSWORD_SECRET_OCID"] == secrets["mlflow-login"]
    assert proxy["MLFLOW_IMAGE"] == "localhost/mlflow-tracking:latest"


def test_the_s3_option_reads_its_secret_key_from_vault(deployed):
    d = deployed("existing-vcn")
    files = static.written_files(user_data_of(deployed, "existing-vcn")["tracking"][1])
    env = _env(files["/etc/mlflow/tracking.env"])
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == f"s3://{d.outputs['bucket_name']}/artifacts"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "https://testnamespace.compat.objectstorage.us-ashburn-1.oraclecloud.com"
    assert env["AWS_ACCESS_KEY_ID"] == d.outputs["s3_access_key_id"]
    assert env["AWS_SECRET_ACCESS_KEY_SECRET_OCID"] == d.outputs["vault_secrets"]["s3-secret-key"]


def test_serving_settings_follow_the_model_alias_through_the_tracking_vm(deployed):
    d = deployed("default")
    files = static.written_files(user_data_of(deployed, "default")["serving"][1])
    env = _env(files["/etc/mlflow/serving.env"])
    tracking = next(r for r in d.replan["resource_changes"] if r["address"] == 'oci_core_instance.vm["tracking"]')
    assert env["MLFLOW_TRACKING_URI"] == f"https://{tracking['change']['after']['private_ip']}"
    assert env["SERVING_MODEL_NAME"] == "wine-quality" and env["SERVING_MODEL_ALIAS"] == "champion"
    assert env["MLFLOW_TRACKING_INSECURE_TLS"] == "true"
    assert env["MLFLOW_TRACKING_PASSWORD_SECRET_OCID"] == d.outputs["vault_secrets"]["mlflow-login"]
    assert "MLFLOW_TRACKING_PASSWORD" not in env
    proxy = _env(files["/etc/mlflow/proxy.env"])
    assert proxy["PROXY_LISTEN_PORT"] == "1234" and proxy["MLFLOW_IMAGE"] == "localhost/mlflow-serving:latest"


@pytest.mark.parametrize("role", ["tracking", "serving"])
def test_rendered_nginx_config_passes_nginx_t(deployed, role, tmp_path):
    """Run the render.sh that cloud-init writes, with the proxy.env it writes, then `nginx -t`."""
    files = static.written_files(user_data_of(deployed, "default")[role][1])
    src = tmp_path / "src"
    for path, content in files.items():
        if path.startswith("/opt/mlflow/src/docker/nginx/"):
            target = src / Path(path).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
    env = _env(files["/etc/mlflow/proxy.env"])
    # the VM's absolute paths, moved under tmp_path
    for name in ("PROXY_HTPASSWD_FILE", "PROXY_TLS_CERT", "PROXY_TLS_KEY"):
        env[name] = str(tmp_path / env[name].lstrip("/"))
    Path(env["PROXY_HTPASSWD_FILE"]).parent.mkdir(parents=True, exist_ok=True)
    Path(env["PROXY_HTPASSWD_FILE"]).write_text("mlflow:$2y$05$abcdefghijklmnopqrstuu5Q1yNfPbvVdKDK.ZqGHsNhZ1xvuhYZS\n")
    rendered = subprocess.run(["bash", str(src / "render.sh"), "-"], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    conf = "pid nginx.pid;\nevents {}\nhttp {\n" + rendered.stdout + "\n}\n"
    assert static.nginx_test_errors(conf) == []
    assert f"listen {env['PROXY_LISTEN_PORT']} ssl;" in rendered.stdout


@pytest.mark.parametrize("role", ["tracking", "serving"])
def test_dockerfiles_in_user_data_pass_hadolint(deployed, role, tmp_path):
    files = static.written_files(user_data_of(deployed, "default")[role][1])
    dockerfile = tmp_path / f"Dockerfile-{role}"
    dockerfile.write_text(files[f"/opt/mlflow/src/docker/Dockerfile-{role}"])
    assert static.hadolint_errors(dockerfile) == []


def test_bootstrap_script_is_clean_in_the_repository():
    assert static.shellcheck_errors((REPO / "userdata" / "mlflow-bootstrap.sh").read_text(), "mlflow-bootstrap.sh") == []
