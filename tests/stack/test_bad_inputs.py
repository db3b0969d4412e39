"""A user who types something wrong learns it at plan time, from a message that says what to fix."""
import queue
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import ocids
from harness.terraform import Terraform, TerraformError

from .conftest import BASE_TFVARS, repo_layout

SUBNET_A = "ocid1.subnet.oc1.iad.amaaaaaa7kd2fr2rl733oj22koggwlsea5gyekmf5ntfo7pvozwhh2agk5xa"
SUBNET_B = "ocid1.subnet.oc1.iad.amaaaaaa67tan46j33qj6pbsa36v7ct56giyf3cxfg3me63nta74yn44ejca"
VCN_A = "ocid1.vcn.oc1.iad.amaaaaaahar5gzpuu4ws6mjhetsovteqku3zbhm3tlbhjk3d7svgyd5hltza"
SUBNET_C = "ocid1.subnet.oc1.iad.amaaaaaajvcizfbgth56yspnlyyat2w62rojcocegm7sfvkjkuxdqj72urza"
SUBNET_D = "ocid1.subnet.oc1.iad.amaaaaaa5vv2lpuggfhlracz632vjptrbbdeo5aj4brbz7vlczlxuuap5pjq"
IMAGE_A = "ocid1.image.oc1.iad.amaaaaaatbmzyyt7j4h7uc2ioggoiwbjrdtddaq7jbvzsw67pz7k56ewz4mq"

pytestmark = pytest.mark.terraform

X86_IMAGE = "ocid1.image.oc1.iad.amaaaaaak7zeokbygadn2vmfjh3kmfjsc543l24wi2ejyrubol5ze7o7737q"
SSO = {"mlflow_users": "sso", "sso_domain_url": "https://idcs-0123456789abcdef0123456789abcdef.identity.oraclecloud.com",
       "sso_admin_group": "mlflow-admins", "sso_user_group": "data-scientists"}  # groups of the double's domain

MY_VAULT = ocids.mint("vault", "mine")
MY_KEY = ocids.mint("key", "mine")

CASES = {
    "malformed allowed CIDR": ({"allowed_ingress_cidr": "203.0.113.7"},
                               ["allowed_ingress_cidr must be an IPv4 CIDR such as 203.0.113.7/32"]),
    "CIDR with host bits": ({"vcn_cidr": "10.0.0.1/16"}, ["vcn_cidr must be an IPv4 network", "first address"]),
    "CIDR prefix out of range": ({"public_subnet_cidr": "10.0.1.0/33"}, ["public_subnet_cidr must be an IPv4 network"]),
    "overlapping subnets": ({"public_subnet_cidr": "10.0.1.0/24", "private_subnet_cidr": "10.0.1.128/25"},
                            ["public_subnet_cidr (10.0.1.0/24) and private_subnet_cidr (10.0.1.128/25) overlap"]),
    "subnet outside the VCN": ({"private_subnet_cidr": "10.1.2.0/24"},
                               ["private_subnet_cidr (10.1.2.0/24) is not inside vcn_cidr (10.0.0.0/16)"]),
    "MySQL address outside its subnet": ({"mysql_private_ip": "10.0.1.20"},
                                         ["mysql_private_ip (10.0.1.20) is not a usable address of the private subnet "
                                          "(10.0.2.0/24)"]),
    "MySQL address OCI keeps": ({"mysql_private_ip": "10.0.2.1"}, ["mysql_private_ip (10.0.2.1) is not a usable address"]),
    "tracking address outside its subnet": ({"tracking_private_ip": "10.0.2.20"},
                                            ["tracking_private_ip (10.0.2.20) is not a usable address of the public "
                                             "subnet (10.0.1.0/24)"]),
    "MySQL address not an address": ({"mysql_private_ip": "10.0.2"}, ["mysql_private_ip must be an IPv4 address"]),
    "short MySQL password": ({"mysql_admin_password": "Ab1-"}, ["mysql_admin_password must be 8 to 32 characters long"]),
    "MySQL password without digit and special": (
        {"mysql_admin_password": "Passwordonly"},
        ["mysql_admin_password needs at least one digit", "mysql_admin_password needs at least one special character"]),
    "MySQL password all lowercase": ({"mysql_admin_password": "secret-pw-1"},
                                     ["mysql_admin_password needs at least one uppercase and one lowercase letter"]),
    "MySQL password with a quote": ({"mysql_admin_password": "Sup3r'Secret"},
                                    ["mysql_admin_password must not contain spaces, quotes or backslashes"]),
    "reserved MySQL user": ({"mysql_admin_username": "root"}, ["mysql_admin_username is a name MySQL HeatWave reserves"]),
    "unknown VM shape": ({"tracking_shape": "VM.Standard.E9.Flex"}, ["tracking_shape must be a flexible VM shape"]),
    "unknown MySQL shape": ({"mysql_shape": "MySQL.3"}, ["mysql_shape must be one of MySQL.Free (Always Free)"]),
    "A1 shape with an x86 image": (
        {"tracking_shape": "VM.Standard.A1.Flex", "tracking_image_id": X86_IMAGE},
        [f"tracking_image_id ({X86_IMAGE}) is not an Oracle Linux image compatible with tracking_shape "
         "VM.Standard.A1.Flex: Arm shapes (A1, A2) need an aarch64 image"]),
    "serving enabled with no model": ({"serving_model_name": ""}, ["serving_enabled is true but no model is named"]),
    "supplied S3 keys missing": ({"artifact_store": "s3", "s3_credentials_source": "supply"},
                                 ["s3_credentials_source is supply: set s3_access_key and s3_secret_key"]),
    "unknown artifact store": ({"artifact_store": "swift"}, ['artifact_store must be "oci"']),
    "unknown way to log in": ({"mlflow_users": "everyone"}, ['mlflow_users must be "shared", "per-person" or "sso"']),
    "single sign-on without its domain": ({"mlflow_users": "sso", "sso_admin_group": "mlflow-admins"},
                                          ["mlflow_users is sso: set sso_domain_url"]),
    "a console URL instead of the domain URL": ({"mlflow_users": "sso", "sso_domain_url": "https://cloud.oracle.com/identity/domains"},
                                                ["sso_domain_url must be an identity domain's Domain URL"]),
    "one group for admins and users": ({**SSO, "sso_user_group": "mlflow-admins"},
                                       ["sso_admin_group and sso_user_group are both mlflow-admins: name two different groups"]),
    "a group the domain does not have": ({**SSO, "sso_user_group": "Data Scientists EU"},
                                         ["sso_user_group Data Scientists EU is not a group of the identity domain "
                                          "https://idcs-0123456789abcdef0123456789abcdef.identity.oraclecloud.com"]),
    "a default permission MLflow lacks": ({"mlflow_users": "per-person", "mlflow_default_permission": "ADMIN"},
                                          ["mlflow_default_permission must be READ, EDIT or NO_PERMISSIONS"]),
    "notebook in an existing VCN": ({"create_notebook_session": True, "use_existing_vcn": True,
                                     "existing_vcn_id": VCN_A,
                                     "existing_public_subnet_id": SUBNET_A,
                                     "existing_private_subnet_id": SUBNET_B},
                                    ["create_notebook_session needs the stack's own VCN"]),
    "notebook subnet over the public one": ({"create_notebook_session": True, "notebook_subnet_cidr": "10.0.1.0/25"},
                                            ["notebook_subnet_cidr (10.0.1.0/25) overlaps public_subnet_cidr"]),
    "notebook subnet outside the VCN": ({"create_notebook_session": True, "notebook_subnet_cidr": "10.9.0.0/24"},
                                        ["notebook_subnet_cidr (10.9.0.0/24) is not inside vcn_cidr"]),
    "vault without its key": ({"vault_ocid": MY_VAULT},
                              ["vault_ocid and vault_key_ocid go together: set both"]),
    "key without its vault": ({"vault_key_ocid": MY_KEY},
                              ["vault_ocid and vault_key_ocid go together: set both"]),
    "vault OCID of another kind": ({"vault_ocid": MY_KEY, "vault_key_ocid": MY_KEY},
                                   ["vault_ocid must be a vault OCID"]),
    "existing VCN without subnets": ({"use_existing_vcn": True, "existing_vcn_id": VCN_A},
                                     ["use_existing_vcn is true: set existing_vcn_id, existing_public_subnet_id"]),
    "short MLflow password": ({"mlflow_password": "short"}, ["mlflow_password must be 12 to 64 characters long"]),
    "bad name prefix": ({"name_prefix": "MLflow_"}, ["name_prefix must be 2-16 characters"]),
    "unknown deployment target": ({"deployment_target": "kubernetes"}, ['deployment_target must be "vm"']),
    "an MLflow version this release does not run": ({"mlflow_version": "3.18.0"},
                                                    ["mlflow_version must be 3.17.2", "3.16.1 or 3.15.2",
                                                     "upgrade the stack to the release"]),
    "OKE without a registry": ({"deployment_target": "oke", "container_registry": ""},
                               ["deployment_target is oke but container_registry is empty: a Kubernetes cluster "
                                "pulls the tracking image and cannot build it"]),
    "OKE in an existing VCN": ({"deployment_target": "oke", "use_existing_vcn": True,
                                "existing_vcn_id": VCN_A,
                                "existing_public_subnet_id": SUBNET_A,
                                "existing_private_subnet_id": SUBNET_B},
                               ["deployment_target is oke but use_existing_vcn is true"]),
    "OKE with a notebook session": ({"deployment_target": "oke", "create_notebook_session": True},
                                    ["create_notebook_session needs deployment_target = vm"]),
    "Kubernetes version without its v": ({"kubernetes_version": "1.34.2"},
                                         ["kubernetes_version must be a Kubernetes version as OKE names it"]),
    "Kubernetes version OKE does not offer": (
        {"deployment_target": "oke", "kubernetes_version": "v1.29.1"},
        ["kubernetes_version v1.29.1 is not a version OKE offers in us-ashburn-1: choose one of v1.32.10, v1.33.1, "
         "v1.34.1, v1.34.2, v1.34.10"]),
    "OKE workers over the public subnet": ({"deployment_target": "oke", "oke_workers_subnet_cidr": "10.0.1.0/25"},
                                           ["oke_workers_subnet_cidr (10.0.1.0/25), public_subnet_cidr and "
                                            "private_subnet_cidr overlap"]),
    "VCN over the pod network": ({"deployment_target": "oke", "vcn_cidr": "10.244.0.0/16",
                                  "public_subnet_cidr": "10.244.1.0/24", "private_subnet_cidr": "10.244.2.0/24",
                                  "oke_api_subnet_cidr": "10.244.4.0/28", "oke_workers_subnet_cidr": "10.244.5.0/24"},
                                 ["vcn_cidr (10.244.0.0/16) overlaps the cluster's pod network (10.244.0.0/16)"]),
}


@pytest.fixture(scope="module")
def tf(tmp_path_factory):
    tf = Terraform(repo_layout(tmp_path_factory.mktemp("bad-inputs")))
    tf.init()
    return tf


@pytest.fixture(scope="module")
def plan_failures(request, tmp_path_factory) -> dict:
    """case -> the TerraformError its plan ended with (None if it planned), for the cases this run selects:
    each case is its own plan, two at a time in two working copies of the stack."""
    cases = sorted({item.callspec.params["case"] for item in request.session.items
                    if item.module is request.module and "plan_failures" in item.fixturenames})
    copies = queue.Queue()
    for number in range(2):
        copy = Terraform(repo_layout(tmp_path_factory.mktemp(f"bad-inputs-{number}")))
        copy.init()
        copies.put(copy)

    def plan(case: str) -> TerraformError | None:
        copy = copies.get()
        try:
            copy.plan({**BASE_TFVARS, **CASES[case][0]}, "bad.bin")
            return None
        except TerraformError as failure:
            return failure
        finally:
            copies.put(copy)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(cases, pool.map(plan, cases), strict=True))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_at_plan_with_a_clear_message(plan_failures, case):
    failure = plan_failures[case]
    assert failure is not None, f"{case}: the plan succeeded"
    for message in CASES[case][1]:
        assert message in failure.message
    assert "Sup3r-Secret-pw" not in failure.message  # secrets never echoed


def test_existing_private_subnet_given_as_public_is_refused(tmp_path):
    fixtures = {"oci_core_subnet": {"cidr_block": "10.20.2.0/24", "vcn_id": VCN_A,
                                    "prohibit_public_ip_on_vnic": True, "state": "AVAILABLE"}}
    tf = Terraform(repo_layout(tmp_path), fixtures=fixtures)
    tf.init()
    tfvars = {**BASE_TFVARS, "use_existing_vcn": True, "existing_vcn_id": VCN_A,
              "existing_public_subnet_id": SUBNET_C, "existing_private_subnet_id": SUBNET_D}
    with pytest.raises(TerraformError) as failure:
        tf.plan(tfvars)
    assert "existing_public_subnet_id is a private subnet (it prohibits public IPs)" in failure.value.message


def test_a_compatible_custom_image_is_accepted(tf):
    """The control for the image check: an x86 image on an x86 shape plans and is used."""
    plan = tf.plan_summary({**BASE_TFVARS, "tracking_image_id": IMAGE_A})
    (tracking,) = [v for v in plan.values.values() if v.get("display_name") == "mlflow-tracking"]
    assert tracking["source_details"][0]["source_id"] == IMAGE_A


def test_chosen_addresses_inside_their_subnets_are_accepted(tf):
    """The control for the address checks: the last usable address of each subnet plans and is used."""
    plan = tf.plan_summary({**BASE_TFVARS, "tracking_private_ip": "10.0.1.254", "mysql_private_ip": "10.0.2.254"})
    (tracking,) = [v for v in plan.values.values() if v.get("display_name") == "mlflow-tracking"]
    (mysql,) = [v for v in plan.values.values() if v.get("display_name") == "mlflow-mysql"]
    assert tracking["create_vnic_details"][0]["private_ip"] == "10.0.1.254"
    assert mysql["ip_address"] == "10.0.2.254"
