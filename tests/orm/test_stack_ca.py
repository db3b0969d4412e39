"""`orm-pack apply` and `outputs` save the servers' CA certificate (cloud/stack_ca.py): read from OCI
Certificates with the user's own key (the fake checks the request's signature, as every OCI API does) and
written beside the OCI config, for MLFLOW_TRACKING_SERVER_CERT_PATH."""
from cryptography import x509

from harness.ocids import mint
from orm_pack.cloud import ociconfig, stack_ca

AUTHORITY = mint("certificateauthority", "mlflow-ca-x1y2", "us-phoenix-1")


def _context(oci_config) -> ociconfig.OciContext:
    return ociconfig.load(ociconfig.AuthOptions(config_file=str(oci_config)), environ={})


def test_the_ca_named_by_the_outputs_is_saved_beside_the_oci_config(oci_config, fake):
    fake.add_authority(AUTHORITY, "mlflow-ca-x1y2")
    saved = stack_ca.save(_context(oci_config), {"tls_ca_id": AUTHORITY}, "team-a", endpoint=fake.url)
    assert saved.problem == "" and saved.path == oci_config.parent / "team-a-ca.pem"
    certificate = x509.load_pem_x509_certificate(saved.path.read_bytes())
    assert certificate.subject.rfc4514_string() == "CN=mlflow-ca-x1y2"
    assert saved.path.stat().st_mode & 0o777 == 0o644
    assert ("GET", f"/20210224/certificateAuthorityBundles/{AUTHORITY}", 200) in fake.requests
    assert fake.auth_failures == []


def test_a_ca_the_user_may_not_read_is_a_warning_that_names_the_grant(oci_config, fake):
    fake.add_authority(AUTHORITY, "mlflow-ca-x1y2")
    fake.unreadable_authorities.add(AUTHORITY)
    saved = stack_ca.save(_context(oci_config), {"tls_ca_id": AUTHORITY}, "team-a", endpoint=fake.url)
    assert saved.path is None and not (oci_config.parent / "team-a-ca.pem").exists()
    assert saved.problem == (f"could not read the servers' CA certificate ({AUTHORITY}): 404 NotAuthorizedOrNotFound: "
                             "ask an administrator for 'read certificate-authority-bundles' on it")


def test_a_stack_without_a_ca_saves_nothing(oci_config, fake):
    assert stack_ca.save(_context(oci_config), {"tls_ca_id": ""}, "team-a", endpoint=fake.url) is None
    assert stack_ca.save(_context(oci_config), {}, "team-a", endpoint=fake.url) is None
