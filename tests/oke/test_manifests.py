"""oke/ rendered with a deployment's settings: valid for the Kubernetes versions OKE offers, hardened,
nothing left to fill in by hand, no secret value anywhere, and the images' own commands."""
import re

import kubernetes_validate
import pytest

from orm_pack.errors import UserError
from orm_pack.oke import manifests

from . import images
from .conftest import REPO_ROOT, deploy_settings, find, pod_spec, pod_specs

SUBNET_A = "ocid1.subnet.oc1.phx.amaaaaaar732q5annpzknceat7sqenrus2277xofqsuqcxb77i3g7bk6ltla"
NETWORKSECURITYGROUP_A = "ocid1.networksecuritygroup.oc1.phx.amaaaaaa67naw7fnphncdc4hvywvpletwuwbnivbjzt7wpgb27nbpl4cmkqa"

# OKE's newest Kubernetes minor and the one before ("Supported Versions of Kubernetes", Container Engine
# for Kubernetes documentation; the add-on support table lists 1.34 as the newest).
KUBERNETES_VERSIONS = ("1.34.0", "1.33.0")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_passes_strict_validation(documents, version):
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_strict_validation_catches_a_misspelt_field(documents):
    """The check above can fail: one unknown field is refused."""
    broken = {**find(documents, "Service", "mlflow-tracking")}
    broken["spec"] = {**broken["spec"], "selctor": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_the_render_leaves_no_placeholder_and_the_settings_arrive(rendered):
    text, documents = rendered
    assert not manifests.leftovers(documents)
    assert not re.search(r"<[^<>\s]+>", text)
    service = find(documents, "Service", "mlflow")
    annotations = service["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/oci-load-balancer-subnet1"] == SUBNET_A
    assert annotations["oci.oraclecloud.com/oci-network-security-groups"] == NETWORKSECURITYGROUP_A
    assert annotations["service.beta.kubernetes.io/oci-load-balancer-shape"] == "flexible"
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    assert service["spec"]["loadBalancerIP"] == "192.0.2.10"  # the stack's reserved address
    assert "oke-deploy-settings" not in text  # the overlay's own settings stay out of the cluster


def test_a_stand_in_that_was_not_replaced_is_an_error(kubectl, tmp_path):
    import shutil

    copy = tmp_path / "oke"
    shutil.copytree(REPO_ROOT / "oke", copy)
    kustomization = copy / "overlays" / "oke" / "kustomization.yaml"
    # Drop the replacement of the MySQL address: the base's stand-in would reach the cluster.
    text = kustomization.read_text()
    start = text.index("  - source: {kind: ConfigMap, name: oke-deploy-settings, fieldPath: data.mysql_cidr}")
    kustomization.write_text(text[:start])
    with pytest.raises(UserError) as error:
        manifests.render(copy, deploy_settings(), kubectl)
    assert "MYSQL_CIDR" in str(error.value)


def test_every_container_is_unprivileged_read_only_and_bounded(documents):
    specs = pod_specs(documents)
    assert set(specs) == {"Deployment/mlflow-tracking", "Deployment/mlflow-proxy", "Job/mlflow-migrate",
                          "Deployment/mlflow-metrics", "CronJob/mlflow-housekeeping"}
    for where, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] >= 10000, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec["automountServiceAccountToken"] is False, where
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (where, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (where, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (where, container["name"])
            assert {"requests", "limits"} <= set(container["resources"]), (where, container["name"])
            image = container["image"]
            assert re.search(r"(:\d[\w.-]*|@sha256:[0-9a-f]{64})$", image) and not image.endswith(":latest"), image


def test_the_tracking_servers_are_replicated_spread_and_probed_on_health(documents):
    tracking = find(documents, "Deployment", "mlflow-tracking")
    assert tracking["spec"]["replicas"] >= 2
    spread = tracking["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["maxSkew"] == 1
    container = tracking["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/health", probe
    # Sized by benchmarks/bench_runtime_memory.py (two workers: about 0.65 GB).
    assert container["resources"]["requests"]["memory"] == "768Mi"
    assert find(documents, "HorizontalPodAutoscaler", "mlflow-tracking")["spec"]["minReplicas"] >= 2
    assert find(documents, "PodDisruptionBudget", "mlflow-tracking")["spec"]["minAvailable"] == 1


def test_settings_carry_secret_ocids_and_no_secret_value(documents):
    config_maps = {d["metadata"]["name"].rsplit("-", 1)[0]: d["data"] for d in documents if d["kind"] == "ConfigMap"}
    assert set(config_maps) == {"mlflow-tracking", "mlflow-migrate", "mlflow-proxy", "mlflow-tls"}
    for name, data in config_maps.items():
        for key, value in data.items():
            assert "PASSWORD" not in key or key.endswith("_SECRET_OCID"), (name, key)
            if key.endswith("_SECRET_OCID"):
                assert value.startswith("ocid1.vaultsecret."), (name, key)
    # The administrator's login reaches the migrate Job only.
    assert not [k for k in config_maps["mlflow-tracking"] if k.startswith("MYSQL_ADMIN")]
    # Its name only: the password's secret is read by orm-pack with the user's key, never by a pod.
    assert config_maps["mlflow-migrate"] == {"MYSQL_ADMIN_USER": "admin"}
    job_pod = find(documents, "Job", "mlflow-migrate")["spec"]["template"]["spec"]
    # orm-pack's short-lived Secret, as a file the Job's user may read (fsGroup), never in its environment
    assert {"name": "mysql-admin", "secret": {"secretName": "mlflow-migrate-admin", "optional": True,
                                              "defaultMode": 0o440}} in job_pod["volumes"]
    assert job_pod["securityContext"]["fsGroup"] == job_pod["securityContext"]["runAsGroup"]
    migrate = job_pod["containers"][0]
    assert {"name": "MYSQL_ADMIN_PASSWORD_FILE", "value": "/run/secrets/mysql-admin/password"} in migrate["env"]
    assert {"name": "mysql-admin", "mountPath": "/run/secrets/mysql-admin", "readOnly": True} in migrate["volumeMounts"]
    job_sources = [s["configMapRef"]["name"] for s in migrate["envFrom"]]
    tracking_sources = [s["configMapRef"]["name"] for s in find(documents, "Deployment", "mlflow-tracking")
                        ["spec"]["template"]["spec"]["containers"][0]["envFrom"]]
    assert any(n.startswith("mlflow-migrate") for n in job_sources)
    assert not any(n.startswith("mlflow-migrate") for n in tracking_sources)
    assert not [d for d in documents if d["kind"] == "Secret"]


def test_only_the_proxy_reaches_mlflow_and_mlflow_reaches_mysql_and_https_only(documents):
    deny = find(documents, "NetworkPolicy", "default-deny")
    assert deny["spec"]["podSelector"] == {} and set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    tracking = find(documents, "NetworkPolicy", "mlflow-tracking")["spec"]
    # the proxy, and the metrics pod for the servers' health
    assert tracking["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}}],
                                    "ports": [{"port": 5000, "protocol": "TCP"}]}
                                   for name in ("mlflow-proxy", "mlflow-metrics")]
    egress = {(rule["ports"][0]["port"], str(rule["to"][0].get("ipBlock", {}).get("cidr"))) for rule in tracking["egress"]}
    assert egress == {(3306, "10.0.1.20/32"), (53, "None"), (80, "169.254.169.254/32"), (443, "0.0.0.0/0")}
    https = [rule for rule in tracking["egress"] if rule["ports"][0]["port"] == 443][0]
    assert "10.0.0.0/8" in https["to"][0]["ipBlock"]["except"]


def test_the_pods_run_the_images_own_entrypoint_and_scripts(documents):
    entrypoint = images.entrypoint()
    tracking = find(documents, "Deployment", "mlflow-tracking")["spec"]["template"]["spec"]["containers"][0]
    job = find(documents, "Job", "mlflow-migrate")["spec"]["template"]["spec"]["containers"][0]
    setup = find(documents, "Deployment", "mlflow-proxy")["spec"]["template"]["spec"]["initContainers"][0]
    assert tracking["command"] == entrypoint and tracking["args"] == ["serve"]
    assert job["command"] == entrypoint and job["args"] == ["migrate"]
    assert images.copied_to(entrypoint[-1]) == "docker/tracking/entrypoint.sh"
    assert images.copied_to(setup["command"][-1]) == "docker/nginx/setup-from-vault.sh"
    assert images.copied_to("/opt/mlflow/nginx/render.sh") == "docker/nginx/render.sh"


def _mounts(spec: dict, container: dict) -> dict:
    """mountPath -> (volume name, read-only) of a container."""
    return {m["mountPath"]: (m["name"], m.get("readOnly", False)) for m in container.get("volumeMounts", [])}


def _tls_settings(documents, pod: dict, container: dict) -> dict:
    names = [s["configMapRef"]["name"] for s in container.get("envFrom", [])]
    tls = [d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] in names
           and d["metadata"]["name"].startswith("mlflow-tls-")]
    assert len(tls) == 1, container["name"]
    return {**tls[0]["data"], **{e["name"]: e["value"] for e in container.get("env", [])}}


def test_the_proxy_pods_present_the_stacks_certificate_and_reload_nginx_when_it_renews(documents):
    """The stack's certificate for the load balancer's address and its CA reach the proxy pod's setup, which
    writes the pair nginx serves, and a sidecar that rewrites it and signals nginx (same process namespace,
    same user, nginx's pid file). Before: the setup made a self-signed pair and nothing renewed it."""
    expected = deploy_settings()
    pod = find(documents, "Deployment", "mlflow-proxy")["spec"]["template"]["spec"]
    setup = pod["initContainers"][0]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"nginx", "tls-refresh", "request-metrics"}
    nginx, refresh = containers["nginx"], containers["tls-refresh"]
    for container in (setup, refresh):
        settings = _tls_settings(documents, pod, container)
        assert (settings["TLS_CERTIFICATE_OCID"], settings["TLS_CA_OCID"]) == (
            expected.tls_certificate_id, expected.tls_ca_id)
        assert settings["TLS_CERTIFICATE_OCID"].startswith("ocid1.certificate.oc1.")
    assert images.copied_to(refresh["command"][1]) == "docker/nginx/tls-from-oci.sh"
    assert refresh["command"][2:] == ["refresh"]
    # the pair the sidecar writes is the one nginx reads: the same volume, where setup-from-vault.sh puts it
    proxy_env = {e["name"]: e["value"] for e in setup["env"]}
    tls_dir = _tls_settings(documents, pod, refresh)["TLS_DIR"]
    assert tls_dir == proxy_env["PROXY_DIR"] + "/tls"
    assert _mounts(pod, refresh)[proxy_env["PROXY_DIR"]] == ("proxy-files", False)
    assert _mounts(pod, nginx)[proxy_env["PROXY_DIR"]] == ("proxy-files", True)
    # it may signal nginx: one process namespace, the pod's user for both, nginx's /tmp (its pid file) shared
    assert pod["shareProcessNamespace"] is True
    assert "runAsUser" not in nginx.get("securityContext", {}) and "runAsUser" not in refresh["securityContext"]
    pid_file = _tls_settings(documents, pod, refresh)["NGINX_PID_FILE"]
    pid_dir, pid_name = pid_file.rsplit("/", 1)
    assert pid_name == "nginx.pid" and _mounts(pod, refresh)[pid_dir] == (_mounts(pod, nginx)["/tmp"][0], True)


def test_the_tracking_pods_and_the_migrate_job_verify_mysql_with_the_stacks_ca(documents):
    """An init container writes the CA's certificate into a volume the server mounts read-only, and
    MLFLOW_DB_SSL_CA names that file. Before: no CA reached the pods."""
    expected = deploy_settings()
    for kind, name, main in (("Deployment", "mlflow-tracking", "tracking"), ("Job", "mlflow-migrate", "migrate")):
        pod = find(documents, kind, name)["spec"]["template"]["spec"]
        (ca,) = pod["initContainers"]
        server = [c for c in pod["containers"] if c["name"] == main][0]
        settings = _tls_settings(documents, pod, ca)
        assert settings["TLS_CA_OCID"] == expected.tls_ca_id
        assert images.copied_to(ca["command"][1]) == "docker/nginx/tls-from-oci.sh" and ca["command"][2:] == ["ca"]
        ca_file = {e["name"]: e["value"] for e in server["env"]}["MLFLOW_DB_SSL_CA"]
        assert ca_file == settings["TLS_DIR"] + "/ca.pem"
        volume, _ = _mounts(pod, ca)[settings["TLS_DIR"]]
        assert _mounts(pod, server)[settings["TLS_DIR"]] == (volume, True)
        assert ca["image"] == server["image"]


def test_a_stack_without_the_oke_certificate_is_refused_with_what_to_do():
    with pytest.raises(UserError, match="tls_certificate_id is missing.*apply it again"):
        deploy_settings(tls_certificate_id="")
    with pytest.raises(UserError, match="tls_ca_id is not an OCID of a certificateauthority"):
        deploy_settings(tls_ca_id="ocid1.certificate.oc1.phx.amaaaaaaie3oz7u7ipad4pfhgbqgirkerv726tjfg5xx2pmbb5xrb2nqx7qq")


def test_metrics_and_housekeeping_run_the_tracking_images_modes_with_the_mlflow_user_only(documents):
    """The OKE path posts the VM's metrics and keeps house as the VM does: the tracking image's `metrics` (every
    minute, Prometheus on :9464) and `housekeeping` (nightly) modes, with the tracking pods' settings (where and as
    what to post, how long deleted runs are kept), MySQL verified with the stack's CA, never the administrator."""
    entrypoint = images.entrypoint()
    metrics_doc = find(documents, "Deployment", "mlflow-metrics")
    housekeeping_doc = find(documents, "CronJob", "mlflow-housekeeping")
    metrics, housekeeping = (pod_spec(d)["containers"][0] for d in (metrics_doc, housekeeping_doc))
    assert metrics["command"] == entrypoint and metrics["args"] == ["metrics", "--every", "60", "--prometheus-port",
                                                                     "9464"]
    assert housekeeping["command"] == entrypoint and housekeeping["args"] == ["housekeeping"]
    assert metrics_doc["spec"]["replicas"] == 1  # two would post every value twice
    annotations = metrics_doc["spec"]["template"]["metadata"]["annotations"]
    assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/port"]) == ("true", "9464")
    assert metrics["readinessProbe"]["httpGet"] == metrics["livenessProbe"]["httpGet"] == {"path": "/metrics",
                                                                                            "port": "metrics"}
    env = {e["name"]: e["value"] for e in metrics["env"]}
    assert env["MLFLOW_METRICS_HEALTH_URL"] == "http://mlflow-tracking:5000/health"
    assert env["MLFLOW_METRICS_DISK_PATH"] == ""
    tracking_settings = [d["data"] for d in documents if d["kind"] == "ConfigMap"
                         and d["metadata"]["name"].startswith("mlflow-tracking-")][0]
    assert {"MLFLOW_METRICS_COMPARTMENT_OCID", "MLFLOW_METRICS_DEPLOYMENT", "MLFLOW_DELETED_RUNS_KEPT_DAYS"} <= set(
        tracking_settings)
    for container in (metrics, housekeeping):
        sources = [s["configMapRef"]["name"] for s in container["envFrom"]]
        assert len(sources) == 1 and sources[0].startswith("mlflow-tracking-"), container["name"]
        assert {"name": "MLFLOW_DB_SSL_CA", "value": "/etc/mlflow-tls/ca.pem"} in container["env"]
    schedule = housekeeping_doc["spec"]
    assert schedule["schedule"] == "17 3 * * *" and schedule["concurrencyPolicy"] == "Forbid"
    assert [c["name"] for c in pod_spec(housekeeping_doc)["initContainers"]] == ["ca"]


def test_metrics_are_open_to_prometheus_and_housekeeping_reaches_mysql_and_https_only(documents):
    metrics = find(documents, "NetworkPolicy", "mlflow-metrics")["spec"]
    assert metrics["ingress"] == [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 9464, "protocol": "TCP"}]}]
    egress = {(rule["ports"][0]["port"], str(rule["to"][0].get("ipBlock", {}).get("cidr"))) for rule in metrics["egress"]}
    assert egress == {(3306, "10.0.1.20/32"), (5000, "None"), (53, "None"), (80, "169.254.169.254/32"),
                      (443, "0.0.0.0/0")}
    housekeeping = find(documents, "NetworkPolicy", "mlflow-housekeeping")["spec"]
    assert "ingress" not in housekeeping and set(housekeeping["policyTypes"]) == {"Ingress", "Egress"}
    egress = {(rule["ports"][0]["port"], str(rule["to"][0].get("ipBlock", {}).get("cidr")))
              for rule in housekeeping["egress"]}
    assert egress == {(3306, "10.0.1.20/32"), (53, "None"), (80, "169.254.169.254/32"), (443, "0.0.0.0/0")}


def test_the_proxy_pods_send_their_request_log_to_a_metrics_sidecar_and_nowhere_else(documents):
    """nginx's request log leaves as syslog datagrams to the pod's loopback (render.sh), where the request-metrics
    sidecar posts it and serves it to Prometheus; the sidecar gets where and as what to post, and no secret."""
    pod = find(documents, "Deployment", "mlflow-proxy")["spec"]["template"]
    setup = pod["spec"]["initContainers"][0]
    sidecar = {c["name"]: c for c in pod["spec"]["containers"]}["request-metrics"]
    assert {"name": "PROXY_REQUEST_LOG", "value": "syslog:server=127.0.0.1:5140"} in setup["env"]
    assert sidecar["command"] == ["python3", "-m", "mlflow_oci.metrics"]
    assert sidecar["args"] == ["--every", "60", "--requests-syslog", "5140", "--prometheus-port", "9465"]
    assert images.copied_to("/opt/mlflow/lib/mlflow_oci/metrics.py") == "docker/lib/mlflow_oci/metrics.py"
    (source,) = [s["configMapRef"]["name"] for s in sidecar["envFrom"]]
    settings = [d["data"] for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == source][0]
    assert settings["MLFLOW_METRICS_DEPLOYMENT"] == "mlflow" and settings["MLFLOW_OCI_AUTH"] == "instance_principal"
    assert settings["MLFLOW_METRICS_COMPARTMENT_OCID"].startswith("ocid1.compartment.oc1..")
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9465"
    policy = find(documents, "NetworkPolicy", "mlflow-proxy")["spec"]
    assert {"from": [{"namespaceSelector": {}}], "ports": [{"port": 9465, "protocol": "TCP"}]} in policy["ingress"]
