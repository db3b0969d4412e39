"""`orm-pack oke deploy|delete` as a user runs them: the real CLI and SDK, the Container Engine API on the
Resource Manager fake (kubeconfig), and kubectl against a pretend cluster that keeps the API server's
and OKE's rules (tests/okefake/kubectl.py)."""
import json
import stat
from pathlib import Path

import pytest

from okefake import install
from okefake.install import MYSQL_ADMIN_PASSWORD
from ormfake.containerengine import Cluster

CLUSTER_A = "ocid1.cluster.oc1.phx.amaaaaaat4afwx2vrqlht4jjshasjbczhp3to64saojrnawtiutz5pvxp2ia"

SETTINGS = Path(__file__).resolve().parents[1] / "oke" / "settings.json"


@pytest.fixture
def cluster_settings():
    return json.loads(SETTINGS.read_text())


def admin_secret_id(cluster_settings: dict) -> str:
    return json.loads(cluster_settings["migrate_env"])["MYSQL_ADMIN_PASSWORD_SECRET_OCID"]


@pytest.fixture
def kube(tmp_path, fake, cluster_settings):
    cluster_id = cluster_settings["cluster_id"]
    fake.add_cluster(Cluster(cluster_id, cluster_settings["region"], public_endpoint="203.0.113.10:6443"))
    fake.add_secret(admin_secret_id(cluster_settings), MYSQL_ADMIN_PASSWORD)  # the stack's Vault secret
    return install(tmp_path / "kube", cluster_id)


def oke(orm_pack, fake, kube, action, *args, settings_file=SETTINGS, **behaviour):
    endpoints = ["--container-engine-endpoint", fake.url] + (["--secrets-endpoint", fake.url] if action == "deploy" else [])
    return orm_pack("oke", action, "--settings", str(settings_file), *endpoints,
                    "--kubeconfig", str(kube.bin_dir.parent / "kubeconfig.yaml"), "--timeout", "20", *args,
                    env=kube.env(**behaviour))


def verbs(kube) -> list[str]:
    return [" ".join(call[:2]) if call[0] != "rollout" else " ".join(call[:3]) for call in kube.calls()]


def test_deploy_prepares_migrates_then_rolls_out_and_prints_the_url(orm_pack, fake, kube):
    result = oke(orm_pack, fake, kube, "deploy")
    assert result.code == 0, result
    assert "MLflow on OKE: https://192.0.2.10/" in result.stdout  # the reserved address
    # clients verify the proxy pods' certificate with the stack's CA, never by skipping the check
    assert "its certificate is from the stack's CA (ocid1.certificateauthority." in result.stdout
    assert "INSECURE" not in result.stdout + result.stderr
    # The order is the point: nothing of the new version starts before the migrations completed.
    calls = verbs(kube)
    assert calls.index("get job/mlflow-migrate") < calls.index("rollout status deployment/mlflow-tracking")
    applied = [c for c in kube.calls() if c[0] == "apply"]
    assert len(applied) == 3, calls
    kinds = {key.split("/")[0] for key in kube.objects()}
    assert {"Namespace", "ConfigMap", "Job", "Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget",
            "HorizontalPodAutoscaler"} <= kinds
    assert "Secret" not in kinds
    kubeconfig = kube.bin_dir.parent / "kubeconfig.yaml"
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert "job/mlflow-migrate: complete" in result.stdout


def test_only_the_migrate_job_gets_the_administrators_password_and_only_while_it_runs(orm_pack, fake, kube,
                                                                                     cluster_settings):
    result = oke(orm_pack, fake, kube, "deploy")
    assert result.code == 0, result
    calls = [" ".join(call[:2]) for call in kube.calls()]
    # read with the user's key, handed over as a Secret just before the Job and deleted right after it
    secret_read = [path for method, path, _ in fake.requests if "/secretbundles/" in path]
    assert secret_read == [f"/20190301/secretbundles/{admin_secret_id(cluster_settings)}"]
    created = calls.index("create")
    assert calls.index("delete secret/mlflow-migrate-admin", created) > calls.index("get job/mlflow-migrate") > created
    assert calls.index("delete secret/mlflow-migrate-admin", created) < calls.index("rollout status")
    objects = kube.objects()
    assert not [key for key in objects if key.startswith("Secret/")]
    pod = objects["Job/mlflow/mlflow-migrate"]["spec"]["template"]["spec"]
    assert {"name": "mysql-admin", "secret": {"secretName": "mlflow-migrate-admin", "optional": True,
                                              "defaultMode": 0o440}} in pod["volumes"]
    # the cluster's own settings never name the administrator's secret: the nodes may not read it
    assert admin_secret_id(cluster_settings) not in json.dumps(objects)
    assert kube.state()["mysql"]["database_ready"]  # the Job made the database with the password it got
    assert MYSQL_ADMIN_PASSWORD not in result.stdout + result.stderr + json.dumps(objects)


def test_a_user_who_may_not_read_the_admin_secret_is_told_what_to_ask_for_and_nothing_is_applied(
        orm_pack, fake, kube, cluster_settings):
    fake.unreadable_secrets.add(admin_secret_id(cluster_settings))
    result = oke(orm_pack, fake, kube, "deploy")
    assert result.code == 3, result
    assert "cannot read the MySQL administrator's secret" in result.stderr
    assert "read secret-bundles" in result.stderr and "404 NotAuthorizedOrNotFound" in result.stderr
    assert not [call for call in kube.calls() if call[0] in ("apply", "create")]


def test_a_wrong_administrator_password_fails_the_job_and_leaves_no_secret(tmp_path, fake, cluster_settings,
                                                                          orm_pack):
    cluster_id = cluster_settings["cluster_id"]
    fake.add_cluster(Cluster(cluster_id, cluster_settings["region"], public_endpoint="203.0.113.10:6443"))
    fake.add_secret(admin_secret_id(cluster_settings), "not-the-db-systems-password")
    kube = install(tmp_path / "kube", cluster_id)
    result = oke(orm_pack, fake, kube, "deploy")
    assert result.code == 1, result
    assert "the database refused MYSQL_ADMIN_USER 'admin'" in result.stderr
    assert not [key for key in kube.objects() if key.startswith(("Secret/", "Deployment/"))]


def test_deploying_again_replaces_the_migrate_job_whose_template_cannot_change(orm_pack, fake, kube, tmp_path):
    assert oke(orm_pack, fake, kube, "deploy").code == 0
    result = oke(orm_pack, fake, kube, "deploy", "--image", "ocir.example.test/ns/oci-mlflow-tracking:1.3.0")
    assert result.code == 0, result
    job = kube.objects()["Job/mlflow/mlflow-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "ocir.example.test/ns/oci-mlflow-tracking:1.3.0"


def test_a_failed_migration_shows_its_log_and_rolls_nothing_out(orm_pack, fake, kube):
    result = oke(orm_pack, fake, kube, "deploy", migrate_fails=1)
    assert result.code == 1, result
    assert "job/mlflow-migrate failed" in result.stderr
    assert "cannot connect to 10.0.1.20:3306 as the administrator" in result.stderr
    assert not any(key.startswith(("Deployment/", "Secret/")) for key in kube.objects())


def test_the_fake_migrate_job_needs_the_password_in_its_environment(tmp_path, kube, fake, cluster_settings):
    """The fake Job reads what init_db.py reads, so the tests above fail if the password does not arrive."""
    import subprocess

    from ormfake.containerengine import kubeconfig

    config = tmp_path / "kc.yaml"
    config.write_text(kubeconfig(fake.clusters[cluster_settings["cluster_id"]], "PUBLIC_ENDPOINT"))
    env = {**__import__("os").environ, **kube.env()}

    def kubectl(verb, document):
        return subprocess.run(["kubectl", "--kubeconfig", str(config), "--namespace", "mlflow", verb, "--filename", "-"],
                              input=json.dumps(document), capture_output=True, text=True, env=env)

    def job(name, env_from, secret=None, optional=False):
        container = {"name": "migrate", "image": "i", "envFrom": env_from}
        pod = {"containers": [container]}
        if secret:  # as oke/base/migrate-job.yaml mounts it
            container["env"] = [{"name": "MYSQL_ADMIN_PASSWORD_FILE", "value": "/run/secrets/a/password"}]
            container["volumeMounts"] = [{"name": "a", "mountPath": "/run/secrets/a"}]
            pod["volumes"] = [{"name": "a", "secret": {"secretName": secret, "optional": optional}}]
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {"template": {"spec": pod}}}

    def state(name):
        conditions = kube.objects()[f"Job/mlflow/{name}"]["status"].get("conditions") or [{"type": "Running"}]
        return conditions[0]["type"]

    def config_map(name, data):
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}

    kubectl("apply", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mlflow"}})
    kubectl("apply", config_map("by-ocid", {"MYSQL_ADMIN_USER": "admin",
                                            "MYSQL_ADMIN_PASSWORD_SECRET_OCID": admin_secret_id(cluster_settings)}))
    kubectl("apply", config_map("user", {"MYSQL_ADMIN_USER": "admin"}))
    kubectl("apply", job("nodes-read-vault", [{"configMapRef": {"name": "by-ocid"}}]))
    assert state("nodes-read-vault") == "Failed"  # the nodes may not read the administrator's secret
    kubectl("apply", job("no-password", [{"configMapRef": {"name": "user"}}]))
    assert state("no-password") == "Failed"  # no database yet, and nobody to make it
    kubectl("apply", job("secret-missing", [{"configMapRef": {"name": "user"}}], secret="s"))
    assert state("secret-missing") == "Running"  # the secret volume cannot be mounted: the pod never starts
    kubectl("apply", job("optional-secret-missing", [{"configMapRef": {"name": "user"}}], secret="s", optional=True))
    assert state("optional-secret-missing") == "Failed"  # starts without the file: no password, no database
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "stringData": {"password": MYSQL_ADMIN_PASSWORD}}
    assert kubectl("create", secret).returncode == 0
    assert "AlreadyExists" in kubectl("create", secret).stderr
    kubectl("apply", job("with-password", [{"configMapRef": {"name": "user"}}], secret="s"))
    assert state("with-password") == "Complete" and kube.state()["mysql"]["database_ready"]
    kubectl("apply", job("afterwards", [{"configMapRef": {"name": "user"}}]))
    assert state("afterwards") == "Complete"  # the database exists now: migrations need no administrator


def test_the_fake_cluster_refuses_what_the_real_one_refuses(tmp_path, kube, fake):
    """The rules the deploy's order relies on fail here when broken, so the deploy test can fail."""
    import subprocess

    from ormfake.containerengine import kubeconfig

    config = tmp_path / "kc.yaml"
    settings = json.loads(SETTINGS.read_text())
    config.write_text(kubeconfig(fake.clusters[settings["cluster_id"]], "PUBLIC_ENDPOINT"))
    env = {**__import__("os").environ, **kube.env()}

    def kubectl(*args, stdin=""):
        return subprocess.run(["kubectl", "--kubeconfig", str(config), "--namespace", "mlflow", *args],
                              input=stdin, capture_output=True, text=True, env=env)

    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"replicas": 1, "template": {"spec": {"containers": [
                      {"name": "c", "image": "i", "envFrom": [{"configMapRef": {"name": "absent"}}]}]}}}}
    assert "namespaces \"mlflow\" not found" in kubectl("apply", "--filename", "-", stdin=json.dumps(deployment)).stderr
    kubectl("apply", "--filename", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": "mlflow"}}))
    assert kubectl("apply", "--filename", "-", stdin=json.dumps(deployment)).returncode == 0
    assert "timed out" in kubectl("rollout", "status", "deployment/d").stderr
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "one"}]}}}}
    assert kubectl("apply", "--filename", "-", stdin=json.dumps(job)).returncode == 0
    job["spec"]["template"]["spec"]["containers"][0]["image"] = "two"
    assert "field is immutable" in kubectl("apply", "--filename", "-", stdin=json.dumps(job)).stderr
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}}
    kubectl("apply", "--filename", "-", stdin=json.dumps(service))
    assert json.loads(kubectl("get", "service/s", "--output", "json").stdout)["status"]["loadBalancer"] == {}
    other = tmp_path / "other.yaml"
    other.write_text(config.read_text().replace(settings["cluster_id"], CLUSTER_A))
    refused = subprocess.run(["kubectl", "--kubeconfig", str(other), "get", "service/s"], capture_output=True,
                             text=True, env=env)
    assert "Unauthorized" in refused.stderr


def test_delete_removes_the_load_balancer_before_the_namespace(orm_pack, fake, kube):
    assert oke(orm_pack, fake, kube, "deploy").code == 0
    result = oke(orm_pack, fake, kube, "delete")
    assert result.code == 0, result
    deletes = [c[1] for c in kube.calls() if c[0] == "delete" and c[1] not in ("job/mlflow-migrate",
                                                                            "secret/mlflow-migrate-admin")]
    assert deletes == ["service/mlflow", "namespace/mlflow"]
    assert kube.objects() == {}


def test_without_the_oci_cli_the_kubeconfig_is_refused_with_what_to_install(orm_pack, fake, tmp_path,
                                                                            cluster_settings):
    fake.add_cluster(Cluster(cluster_settings["cluster_id"], cluster_settings["region"], "203.0.113.10:6443"))
    kube = install(tmp_path / "bare", cluster_settings["cluster_id"], with_oci_cli=False)
    env = kube.env()
    env["PATH"] = f"{kube.bin_dir}:/usr/bin:/bin"
    result = orm_pack("oke", "deploy", "--settings", str(SETTINGS), "--container-engine-endpoint", fake.url,
                      "--kubeconfig", str(tmp_path / "kc.yaml"), env=env)
    assert result.code == 3, result
    assert "`oci`, which is not on PATH" in result.stderr and "pip install oci-cli" in result.stderr
    assert not (tmp_path / "kc.yaml").exists()


def test_an_unknown_cluster_is_a_clear_not_found(orm_pack, fake, tmp_path, cluster_settings):
    kube = install(tmp_path / "k", cluster_settings["cluster_id"])  # the Container Engine API knows no cluster
    result = oke(orm_pack, fake, kube, "deploy")
    assert result.code == 4, result
    assert "NotAuthorizedOrNotFound" in result.stderr or "not found" in result.stderr.lower()


@pytest.mark.parametrize("key", ["cluster_id", "lb_ip", "lb_subnet_id", "lb_nsg_id", "ingress_cidr", "mysql_cidr",
                                 "tracking_env", "migrate_env", "login_password_secret_ocid"])
def test_a_missing_output_value_names_it_and_writes_nothing(orm_pack, tmp_path, cluster_settings, key):
    del cluster_settings[key]
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(cluster_settings))
    output = tmp_path / "rendered.yaml"
    result = orm_pack("oke", "deploy", "--settings", str(settings_file), "--dry-run", "--output", str(output),
                      auth=False)
    assert result.code == 2, result
    assert f"oke_deploy_settings: {key} is missing" in result.stderr
    assert "deployment_target" in result.stderr
    assert not output.exists()


def test_dry_run_reads_the_saved_outputs_of_orm_pack_outputs_json(orm_pack, tmp_path, cluster_settings):
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps({"job_id": "x", "outputs": {"oke_deploy_settings": cluster_settings,
                                                            "mlflow_url": ""}}))
    result = orm_pack("oke", "deploy", "--settings", str(saved), "--dry-run", auth=False)
    assert result.code == 0, result
    assert "kind: Deployment" in result.stdout and "ghcr.io/oracle-quickstart/oci-mlflow-tracking:1.2.0" in result.stdout


def test_an_image_without_a_version_is_refused(orm_pack, tmp_path):
    result = orm_pack("oke", "deploy", "--settings", str(SETTINGS), "--dry-run", "--image",
                      "ocir.example.test/ns/oci-mlflow-tracking", auth=False)
    assert result.code == 2 and "--image must be <registry>/<path>:<tag>" in result.stderr, result


def test_a_saved_outputs_file_without_the_oke_settings_says_so(orm_pack, tmp_path):
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps({"job_id": "x", "outputs": {"mlflow_url": "https://203.0.113.7"}}))
    result = orm_pack("oke", "deploy", "--settings", str(saved), "--dry-run", auth=False)
    assert result.code == 2 and "holds no oke_deploy_settings" in result.stderr, result
