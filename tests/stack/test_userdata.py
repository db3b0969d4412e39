"""The VMs' cloud-init, decoded from the plan exactly as OCI hands it to the instance, and the docker/
files each VM fetches from the runtime bucket at first boot, decoded from the object the plan uploads;
checked with the tools that would reject them on the VM: cloud-init's schema, shellcheck, nginx -t,
hadolint."""
import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import static

from .conftest import PROFILES, REPO, instance_user_data, runtime_objects

pytestmark = pytest.mark.terraform

ROLES = {'oci_core_instance.vm["tracking"]': "tracking", 'oci_core_instance.vm["serving"]': "serving"}


def user_data_of(deployed, profile):
    """role -> (base64 user_data, decoded cloud-config text), from the plan after apply (all known)."""
    d = deployed(profile)
    return {ROLES[a]: (ud, static.decode_user_data(ud)) for a, ud in instance_user_data(d.replan).items()}


def runtime_files_of(deployed, profile) -> dict[str, dict[str, str]]:
    """role -> {repository path: text} of the runtime-<role>.json object the stack uploads (runtime.tf)."""
    return {role: {path: base64.b64decode(content).decode() for path, content in json.loads(obj).items()}
            for role, obj in runtime_objects(deployed(profile).replan).items()}


def _planned(deployed, address):
    (found,) = [r["change"]["after"] for r in deployed("default").replan["resource_changes"] if r["address"] == address]
    return found


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
def test_every_script_the_vms_get_passes_shellcheck(deployed, profile):
    bundles = runtime_files_of(deployed, profile)
    for role, (_, text) in user_data_of(deployed, profile).items():
        scripts = {p: c for p, c in static.written_files(text).items() if p.endswith(".sh")}
        scripts.update({f"/opt/mlflow/src/{p}": c for p, c in bundles[role].items() if p.endswith(".sh")})
        assert set(scripts) >= {"/usr/local/sbin/mlflow-bootstrap.sh", "/opt/mlflow/src/docker/nginx/render.sh"}
        for path, content in scripts.items():
            assert static.shellcheck_errors(content, path) == [], f"{role}: {path}"


def test_the_runtime_files_reach_the_vm_unchanged_through_the_bucket(deployed):
    """The role's docker/ files travel in the runtime bucket, not in user_data: the object decodes to the
    repository's files, byte for byte; user_data carries its URL (a read-only request for that object)
    and its SHA-256, and none of the files."""
    bundles = runtime_objects(deployed("default").replan)
    for role, (_, text) in user_data_of(deployed, "default").items():
        files = static.written_files(text)
        shipped = {path: base64.b64decode(content) for path, content in json.loads(bundles[role]).items()}
        expected = {f"docker/Dockerfile-{role}", "docker/nginx/render.sh", "docker/nginx/mlflow-proxy.conf.template",
                    "docker/nginx/auth-proxy.conf", "docker/nginx/auth-upstream.conf", "docker/nginx/auth-tracking.conf",
                    "docker/nginx/fronts-tracking.conf", "docker/nginx/fronts-serving.conf",
                    "docker/nginx/tls-self-signed.sh",
                    "docker/lib/mlflow_oci/ocids.py", "docker/lib/mlflow_oci/secrets.py"}
        expected |= ({"docker/tracking/entrypoint.sh", "docker/tracking/init_db.py", "docker/lib/mlflow_oci/artifacts.py",
                      "docker/lib/mlflow_oci-0.dist-info/entry_points.txt"} if role == "tracking"
                     else {"docker/serving/supervisor.py", "docker/serving/launcher.py", "docker/serving/legacy_adapter.py",
                           "docker/serving/model-egress.sh"})
        assert set(shipped) >= expected, role
        assert not any("__pycache__" in path for path in shipped)
        for rel, content in shipped.items():
            assert content == (REPO / rel).read_bytes(), f"{role}: {rel} differs from the repository"
        # user_data carries none of them, only where to fetch them and what they hash to
        assert not [p for p in files if p.startswith("/opt/mlflow/src/")], role
        for rel, content in shipped.items():
            if len(content) > 200:
                assert content.decode() not in text, f"{role}: user_data still carries {rel}"
        env = _env(files["/etc/mlflow/runtime.env"])
        assert env["RUNTIME_FILES_SHA256"] == hashlib.sha256(bundles[role].encode()).hexdigest()
        par = _planned(deployed, f'oci_objectstorage_preauthrequest.runtime_files["{role}"]')
        assert env["RUNTIME_FILES_URL"] == par["full_path"]
        assert (par["access_type"], par["object_name"]) == ("ObjectRead", f"runtime-{role}.json")
        obj = _planned(deployed, f'oci_objectstorage_object.runtime_files["{role}"]')
        assert obj["delete_all_object_versions"] is True  # it goes with the stack, every version
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
        # serving: the metadata block loaded before every start, then root in the container with only what
        # starting the model server as another user takes (docker/serving/launcher.py)
        lines = unit.splitlines()
        starts = [line for line in lines if line.startswith(("ExecStartPre=", "ExecStart="))]
        isolated = ["ExecStartPre=/usr/bin/bash /opt/mlflow/src/docker/serving/model-egress.sh",
                    "--user 0:0 --cap-drop all --cap-add setuid,setgid,kill --security-opt no-new-privileges"]
        if role == "serving":
            assert starts[1] == isolated[0] and isolated[1] in starts[2] and len(starts) == 3, unit
        else:
            assert not any(part in unit for part in isolated) and "--user" not in unit, unit


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
    # it verifies the tracking server with the stack's CA (mounted from mlflow-refresh-tls's copy), never insecure
    assert env["MLFLOW_TRACKING_SERVER_CERT_PATH"] == "/opt/mlflow/tls/mlflow-ca.pem"
    assert "MLFLOW_TRACKING_INSECURE_TLS" not in env
    assert env["MLFLOW_TRACKING_PASSWORD_SECRET_OCID"] == d.outputs["vault_secrets"]["mlflow-login"]
    assert "MLFLOW_TRACKING_PASSWORD" not in env
    proxy = _env(files["/etc/mlflow/proxy.env"])
    assert proxy["PROXY_LISTEN_PORT"] == "1234" and proxy["MLFLOW_IMAGE"] == "localhost/mlflow-serving:latest"


@pytest.mark.parametrize("role", ["tracking", "serving"])
def test_rendered_nginx_config_passes_nginx_t(deployed, role, tmp_path):
    """Run the tls-self-signed.sh and render.sh the VM fetches, with the proxy.env cloud-init writes, then
    `nginx -t`."""
    files = static.written_files(user_data_of(deployed, "default")[role][1])
    src = tmp_path / "src"
    for path, content in runtime_files_of(deployed, "default")[role].items():
        if path.startswith("docker/nginx/"):
            target = src / Path(path).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
    env = _env(files["/etc/mlflow/proxy.env"])
    # the VM's absolute paths, moved under tmp_path
    for name in ("PROXY_HTPASSWD_FILE", "PROXY_TLS_CERT", "PROXY_TLS_KEY"):
        env[name] = str(tmp_path / env[name].lstrip("/"))
    Path(env["PROXY_HTPASSWD_FILE"]).parent.mkdir(parents=True, exist_ok=True)
    Path(env["PROXY_HTPASSWD_FILE"]).write_text("mlflow:$2y$05$abcdefghijklmnopqrstuu5Q1yNfPbvVdKDK.ZqGHsNhZ1xvuhYZS\n")
    made = subprocess.run(["bash", str(src / "tls-self-signed.sh")], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=60)  # as the bootstrap does, before render.sh
    assert made.returncode == 0, made.stderr
    rendered = subprocess.run(["bash", str(src / "render.sh"), "-"], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    conf = "pid nginx.pid;\nevents {}\nhttp {\n" + rendered.stdout + "\n}\n"
    assert static.nginx_test_errors(conf) == []
    assert f"listen {env['PROXY_LISTEN_PORT']} ssl;" in rendered.stdout
    assert "client_max_body_size    64m;" in rendered.stdout  # max_request_body_mb's default
    # the serving VM's proxy keeps the browser's cookies and Origin from the model's code
    assert ('proxy_set_header   Cookie "";' in rendered.stdout) == (role == "serving")


@pytest.mark.parametrize("role", ["tracking", "serving"])
def test_the_dockerfile_the_vm_fetches_passes_hadolint(deployed, role, tmp_path):
    dockerfile = tmp_path / f"Dockerfile-{role}"
    dockerfile.write_text(runtime_files_of(deployed, "default")[role][f"docker/Dockerfile-{role}"])
    assert static.hadolint_errors(dockerfile) == []


def test_bootstrap_script_is_clean_in_the_repository():
    assert static.shellcheck_errors((REPO / "userdata" / "mlflow-bootstrap.sh").read_text(), "mlflow-bootstrap.sh") == []
