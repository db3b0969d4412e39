"""The provider double plans OCI Certificates' resources as oracle/oci does: what the service cannot change
in place replaces the resource (ForceNew in internal/service/certificates_management/
certificates_management_certificate_resource.go and …_certificate_authority_resource.go at v7.19.0: the
names, the subject, the subject alternative names, the issuer, the key and signing algorithms); a new
validity is an update (the service issues a new version)."""
from pathlib import Path

import pytest

pytestmark = pytest.mark.terraform

CERTIFICATE = "oci_certificates_management_certificate.server"
AUTHORITY = "oci_certificates_management_certificate_authority.ca"


@pytest.fixture(scope="module")
def tf_config_dir():
    return Path(__file__).resolve().parent / "fixtures" / "certificates-config"


def _actions(plan: dict) -> dict:
    return {c["address"]: c["change"]["actions"] for c in plan["resource_changes"]
            if c["change"]["actions"] not in (["no-op"], ["read"])}


def test_a_certificate_is_replaced_for_new_addresses_and_updated_for_a_new_validity(fresh_config):
    tf = fresh_config()
    tf.apply()
    assert _actions(tf.plan({"addresses": ["203.0.113.10", "10.0.1.11"]})) == {CERTIFICATE: ["delete", "create"]}
    assert _actions(tf.plan({"not_after": "2028-12-01T00:00:00Z"})) == {CERTIFICATE: ["update"]}
    # a CA renamed is another CA, and what it issued goes with it
    assert _actions(tf.plan({"ca_name": "harness-ca-2"})) == {AUTHORITY: ["delete", "create"],
                                                             CERTIFICATE: ["delete", "create"]}
