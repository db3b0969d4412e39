"""TLS that clients verify (stack/tls.tf, docs/tls.md), read from the plan after apply where every OCID and
address is known: the CA signs with an HSM-protected RSA key in the vault the stack uses (OCI Certificates
requires an HSM-protected asymmetric key for a CA), each VM's certificate names that VM's reserved public IP
and its private IP as IP subject alternative names (its common name the private IP, which nginx checks), the
VM is told which certificate and CA to read and where, the serving VM verifies the tracking server with the
CA, the MySQL DB system presents a certificate from the same CA for its private IP, which the tracking
server verifies, and the outputs carry the CA and the command that reads its certificate. IAM is in
test_iam.py."""
import base64
import ipaddress
import json
import re

import pytest

from harness import static

from .conftest import _env_files, tfvars_of

pytestmark = pytest.mark.terraform

VM_PROFILES = ["default", "existing-vcn", "per-person"]


def _resources(plan: dict, type_name: str) -> dict:
    return {r["address"]: r["change"]["after"] for r in plan["resource_changes"]
            if r["type"] == type_name and r["change"]["after"]}


@pytest.mark.parametrize("profile", VM_PROFILES)
def test_the_ca_signs_with_an_hsm_rsa_key_in_the_stacks_vault(deployed, profile):
    d = deployed(profile)
    tfvars = tfvars_of(d.inventory)
    key = _resources(d.replan, "oci_kms_key")["oci_kms_key.tls_ca[0]"]
    assert key["protection_mode"] == "HSM"
    assert (key["key_shape"][0]["algorithm"], key["key_shape"][0]["length"]) == ("RSA", 256)  # bytes: RSA 2048
    assert key["display_name"] == f"{tfvars.get('name_prefix', 'mlflow')}-ca"
    if tfvars.get("vault_ocid"):  # the user's vault: the key goes there too, through its management endpoint
        assert key["management_endpoint"] == "https://of6wozohugz6n-management.kms.us-ashburn-1.oraclecloud.com"
    else:
        (vault,) = _resources(d.replan, "oci_kms_vault").values()
        assert key["management_endpoint"] == vault["management_endpoint"]
    (ca,) = _resources(d.replan, "oci_certificates_management_certificate_authority").values()
    assert ca["kms_key_id"] == key["id"]
    config = ca["certificate_authority_config"][0]
    assert (config["config_type"], config["signing_algorithm"]) == ("ROOT_CA_GENERATED_INTERNALLY", "SHA256_WITH_RSA")
    # a destroyed CA keeps its name while pending deletion: the name carries a suffix of the key's OCID
    assert ca["name"].startswith(f"{tfvars.get('name_prefix', 'mlflow')}-ca-") and len(ca["name"].rsplit("-", 1)[1]) == 8
    assert d.outputs["tls_ca_id"] == ca["id"]
    assert d.outputs["tls_ca_command"] == (
        f"oci certificates certificate-authority-bundle get --certificate-authority-id {ca['id']} "
        "--query 'data.\"certificate-pem\"' --raw-output > mlflow-ca.pem")


@pytest.mark.parametrize("profile", VM_PROFILES)
def test_each_vm_certificate_names_its_public_and_private_ip(deployed, profile):
    d = deployed(profile)
    (ca,) = _resources(d.replan, "oci_certificates_management_certificate_authority").values()
    public = {a.split('"')[1]: v["ip_address"] for a, v in _resources(d.replan, "oci_core_public_ip").items()}
    instances = {v["freeform_tags"]["role"]: v for v in _resources(d.replan, "oci_core_instance").values()}
    certificates = {a.split('"')[1]: v for a, v in _resources(d.replan, "oci_certificates_management_certificate").items()
                    if a.startswith("oci_certificates_management_certificate.vm[")}
    assert set(certificates) == set(instances)
    for role, certificate in certificates.items():
        config = certificate["certificate_config"][0]
        private = instances[role]["private_ip"]
        assert [(san["type"], san["value"]) for san in config["subject_alternative_names"]] == [
            ("IP", public[role]), ("IP", private)]
        assert all(ipaddress.ip_address(a) for a in (public[role], private))
        assert config["subject"][0]["common_name"] == private
        assert (config["config_type"], config["certificate_profile_type"], config["key_algorithm"]) == (
            "ISSUED_BY_INTERNAL_CA", "TLS_SERVER", "RSA2048")
        assert config["issuer_certificate_authority_id"] == ca["id"]
        # a name of its own per set of addresses: a replaced certificate keeps its name while pending deletion
        prefix = tfvars_of(d.inventory).get("name_prefix", "mlflow")
        assert re.fullmatch(rf"{prefix}-{role}-[0-9a-f]{{8}}", certificate["name"]), certificate["name"]
        assert config["validity"][0]["time_of_validity_not_after"]
        (rule,) = certificate["certificate_rules"]
        assert (rule["rule_type"], rule["renewal_interval"], rule["advance_renewal_period"]) == (
            "CERTIFICATE_RENEWAL_RULE", "P90D", "P30D")
    if "tracking" in instances:
        assert instances["tracking"]["private_ip"] == "10.0.1.10" or profile == "existing-vcn"


@pytest.mark.parametrize("profile", VM_PROFILES)
def test_each_vm_is_told_its_certificate_and_the_ca_and_serving_verifies_tracking(deployed, profile):
    d = deployed(profile)
    per_person = tfvars_of(d.inventory).get("mlflow_users", "shared") != "shared"
    (ca,) = _resources(d.replan, "oci_certificates_management_certificate_authority").values()
    secrets = {a.split('"')[1]: v for a, v in _resources(d.replan, "oci_vault_secret").items() if ".tls[" in a}
    certificates = {a.split('"')[1]: v["id"] for a, v in
                    _resources(d.replan, "oci_certificates_management_certificate").items()}
    for instance in _resources(d.replan, "oci_core_instance").values():
        role = instance["freeform_tags"]["role"]
        files = _env_files(instance["metadata"]["user_data"])
        proxy = files["proxy.env"]
        secret = secrets[role]
        assert proxy["PROXY_TLS_CERTIFICATE_OCID_SECRET_NAME"] == secret["secret_name"]
        assert base64.b64decode(secret["secret_content"][0]["content"]).decode() == certificates[role]
        assert proxy["MLFLOW_VAULT_OCID"] == secret["vault_id"] == d.outputs["vault_id"]
        assert proxy["PROXY_TLS_CA_OCID"] == ca["id"]
        assert proxy["PROXY_TLS_CA_FILE"] == "/etc/pki/nginx/mlflow-ca.pem"
        if role == "serving":
            serving = files["serving.env"]
            assert "MLFLOW_TRACKING_INSECURE_TLS" not in serving
            assert serving["MLFLOW_TRACKING_SERVER_CERT_PATH"] == "/opt/mlflow/tls/mlflow-ca.pem"
            tracking_ip = serving["MLFLOW_TRACKING_URI"].removeprefix("https://")
            if per_person:  # its proxy asks the tracking server for each caller's login
                assert (proxy["PROXY_AUTH_TLS_CA"], proxy["PROXY_AUTH_TLS_NAME"]) == (proxy["PROXY_TLS_CA_FILE"], tracking_ip)
            else:
                assert "PROXY_AUTH_TLS_CA" not in proxy


@pytest.mark.parametrize("profile", ["default", "oke"])
def test_mysql_presents_a_certificate_from_the_ca_for_its_private_ip_and_tracking_verifies_it(deployed, profile):
    """HeatWave's "bring your own certificate" (the DB system's secure_connections, BYOC, names a certificate
    of OCI Certificates; MySQL HeatWave docs, Resource Principals): the certificate names the private IP the
    tracking server connects to, as its only IP SAN and its common name, so the tracking server checks the
    name as well as the chain. Before, the DB system kept HeatWave's own certificate and the tracking server
    skipped the name check (ssl_check_hostname=false) and had no CA to check the chain with."""
    d = deployed(profile)
    (ca,) = _resources(d.replan, "oci_certificates_management_certificate_authority").values()
    (db,) = _resources(d.replan, "oci_mysql_mysql_db_system").values()
    certificate = _resources(d.replan, "oci_certificates_management_certificate")[
        'oci_certificates_management_certificate.service["mysql"]']
    assert db["secure_connections"] == [{"certificate_generation_type": "BYOC", "certificate_id": certificate["id"]}]
    config = certificate["certificate_config"][0]
    assert [(san["type"], san["value"]) for san in config["subject_alternative_names"]] == [("IP", db["ip_address"])]
    assert config["subject"][0]["common_name"] == db["ip_address"]
    assert (config["issuer_certificate_authority_id"], config["certificate_profile_type"]) == (ca["id"], "TLS_SERVER")
    assert certificate["certificate_rules"][0]["renewal_interval"] == "P90D"
    # The VMs wait for MySQL, never the other way round: what lets the DB system read its certificate must not
    # name the VMs (a dynamic group of the VMs' would have the DB system created after them).
    state = json.loads(d.tf.run("state", "pull").stdout)
    (db_state,) = [r for r in state["resources"] if r["type"] == "oci_mysql_mysql_db_system"]
    waits_for = db_state["instances"][0]["dependencies"]
    assert "time_sleep.mysql_certificate_policy" in waits_for
    assert not [dep for dep in waits_for if dep.startswith(("oci_core_instance.", "oci_datascience_notebook_session."))]
    for instance in _resources(d.replan, "oci_core_instance").values():
        if instance["freeform_tags"]["role"] != "tracking":
            continue
        tracking = _env_files(instance["metadata"]["user_data"])["tracking.env"]
        assert tracking["MLFLOW_DB_HOST"] == db["ip_address"]
        assert tracking["MLFLOW_DB_SSL_CA"] == "/opt/mlflow/tls/mlflow-ca.pem"
        files = static.written_files(static.decode_user_data(instance["metadata"]["user_data"]))
        (start,) = [line for line in files["/etc/systemd/system/mlflow-tracking.service"].splitlines()
                    if line.startswith("ExecStart=")]
        # where mlflow-refresh-tls keeps the CA's certificate, read-only in the container
        assert "--volume /var/lib/mlflow/tls:/opt/mlflow/tls:ro,z" in start


def test_oke_the_proxy_pods_certificate_names_the_load_balancers_reserved_ip_and_reaches_the_pods(deployed):
    """deployment_target = "oke": the same key and CA; besides MySQL's, one certificate for the reserved public
    IP the load balancer takes (it passes TLS through to the proxy pods), whose OCID and the CA's reach orm-pack
    oke deploy; clients are told to verify with the CA, never to skip the check. Before: no certificate for
    the load balancer, no tls_ca_command, and notebook_setup said MLFLOW_TRACKING_INSECURE_TLS=true."""
    d = deployed("oke")
    (ca,) = _resources(d.replan, "oci_certificates_management_certificate_authority").values()
    key = _resources(d.replan, "oci_kms_key")["oci_kms_key.tls_ca[0]"]
    assert ca["kms_key_id"] == key["id"] and key["protection_mode"] == "HSM"
    certificates = _resources(d.replan, "oci_certificates_management_certificate")
    assert set(certificates) == {'oci_certificates_management_certificate.service["mysql"]',
                                 'oci_certificates_management_certificate.service["oke-lb"]'}
    certificate = certificates['oci_certificates_management_certificate.service["oke-lb"]']
    reserved = _resources(d.replan, "oci_core_public_ip")["oci_core_public_ip.oke_lb[0]"]["ip_address"]
    config = certificate["certificate_config"][0]
    assert [(san["type"], san["value"]) for san in config["subject_alternative_names"]] == [("IP", reserved)]
    assert config["subject"][0]["common_name"] == reserved
    assert (config["config_type"], config["certificate_profile_type"], config["issuer_certificate_authority_id"]) == (
        "ISSUED_BY_INTERNAL_CA", "TLS_SERVER", ca["id"])
    assert re.fullmatch(r"mlflow-oke-lb-[0-9a-f]{8}", certificate["name"]), certificate["name"]
    (rule,) = certificate["certificate_rules"]
    assert (rule["rule_type"], rule["renewal_interval"], rule["advance_renewal_period"]) == (
        "CERTIFICATE_RENEWAL_RULE", "P90D", "P30D")
    settings = d.outputs["oke_deploy_settings"]
    assert (settings["tls_certificate_id"], settings["tls_ca_id"]) == (certificate["id"], ca["id"])
    assert settings["lb_ip"] == reserved
    out = d.outputs
    assert out["tls_ca_id"] == ca["id"]
    assert out["tls_ca_command"] == (
        f"oci certificates certificate-authority-bundle get --certificate-authority-id {ca['id']} "
        "--query 'data.\"certificate-pem\"' --raw-output > mlflow-ca.pem")
    setup = out["notebook_setup"]
    assert "INSECURE" not in setup and "--insecure" not in setup
    assert setup.startswith(out["tls_ca_command"] + "\nexport MLFLOW_TRACKING_SERVER_CERT_PATH=$PWD/mlflow-ca.pem\n")


@pytest.mark.parametrize("profile", ["default", "per-person"])
def test_what_the_outputs_tell_clients_verifies_the_servers_and_never_turns_verification_off(deployed, profile):
    """notebook_setup and each VM's commands.txt read the CA's certificate and point MLflow and curl at it;
    before the CA, they told every client MLFLOW_TRACKING_INSECURE_TLS=true and `curl -k`."""
    out = deployed(profile).outputs
    told = {name: out[name] for name in ("notebook_setup", "commands_tracking", "commands_serving") if out[name]}
    assert set(told) == {"notebook_setup", "commands_tracking", "commands_serving"}
    for name, text in told.items():
        assert "INSECURE" not in text and "curl -k" not in text and "--insecure" not in text, name
        assert out["tls_ca_command"] in text, name
    assert "export MLFLOW_TRACKING_SERVER_CERT_PATH=$PWD/mlflow-ca.pem\n" in out["notebook_setup"]
    assert out["tls_ca_command"].endswith("> mlflow-ca.pem")
