"""Least privilege for the VMs (stack/iam.tf), read from the plan after apply where every OCID is known.

OCI policy syntax (IAM docs, "Policy Syntax" and the Vault and Object Storage policy references):
`Allow <subject> to <verb> <resource-type> in compartment id <ocid> where <conditions>`, a subject
`dynamic-group id <ocid>` or `dynamic-group <name>`; `read secret-bundles` is what reading a secret's
value needs and takes `target.secret.id`; `manage objects` takes `target.bucket.name`. Creating,
reading and deleting a bucket's pre-authenticated requests needs PAR_MANAGE on the bucket (Object Storage,
"Pre-Authenticated Requests", Required Permissions), a permission of `manage buckets`; a statement
narrowed to it names `request.permission = 'PAR_MANAGE'` with the bucket (IAM, "Conditions"). A dynamic group's
matching rule `ALL {instance.id = '<ocid>'}` matches that one instance, `ALL {resource.type =
'datasciencenotebooksession', resource.id = '<ocid>'}` that one notebook session (its resource principal).
Data Science attaches a session to a customer subnet only with `Allow service datascience to use
virtual-network-family in compartment …` (Data Science policy docs). OKE worker nodes, which the node pool
creates and replaces, are matched as OKE documents for a node pool ("Managing Access By Applying Tags to
Cluster-Related Resources"): by a defined tag the pool puts on its nodes, `tag.<namespace>.<key>.value =
'<value>'` (free-form tags cannot be used in matching rules), here together with `instance.compartment.id`;
the tag's namespace must be this stack's own, so no other instance carries it by accident. A secret the
stack can only name (it is created after the VM that reads it: single sign-on) is granted by its name,
`any {target.secret.name = '<name>', …}` (the names carry the stack's prefix). OKE's
cloud controller assigns a load balancer its reserved public IP as the cluster itself (`any-user … where
request.principal.type = 'cluster'`, and `request.principal.id` its OCID), with `read public-ips` and
`manage floating-ips` (OKE docs, "Specifying Load Balancer Reserved IP"). OCI Certificates (its policy
reference): a VM reads its certificate with the private key by `read leaf-certificate-bundles` where
`target.leaf-certificate.id` and `target.leaf-certificate.bundle-type = 'CERTIFICATE_CONTENT_WITH_PRIVATE_KEY'`,
the CA's certificate by `read certificate-authority-bundles` where `target.certificate-authority.id`; a CA
signs with its Vault key under `Allow any-user to use keys … where all {request.principal.type =
'certificateauthority', target.key.id = '<key>'}` ("Required IAM Policy")."""
import base64
import re

import pytest

from .conftest import PROFILES, tfvars_of

pytestmark = pytest.mark.terraform

STATEMENT = re.compile(r"^Allow (?P<subject>dynamic-group id \S+|dynamic-group \S+) to (?P<verb>\w+) (?P<resource>[\w-]+)"
                       r" in compartment id (?P<compartment>\S+) where (?P<where>.+)$")
SECRET_CONDITION = re.compile(r"^any \{(target\.secret\.id = '[^']+'(, )?)+\}$")
SECRET_BY_NAME = re.compile(r"^any \{(target\.secret\.name = '[^']+'(, )?)+\}$")
LEAF_CONDITION = re.compile(r"^all \{target\.leaf-certificate\.id = '([^']+)', "
                            r"target\.leaf-certificate\.bundle-type = 'CERTIFICATE_CONTENT_WITH_PRIVATE_KEY'\}$")
CA_CONDITION = re.compile(r"^target\.certificate-authority\.id = '([^']+)'$")
PAR_CONDITION = re.compile(r"^all \{target\.bucket\.name = '([^']+)', request\.permission = 'PAR_MANAGE'\}$")


def resources(plan: dict, type_name: str) -> dict:
    return {r["address"]: r["change"]["after"] for r in plan["resource_changes"]
            if r["type"] == type_name and r["change"]["after"]}


def stack_facts(d) -> dict:
    plan = d.replan
    every_secret = resources(plan, "oci_vault_secret")
    secrets = {v["secret_name"].split("-", 1)[1]: v["id"] for a, v in every_secret.items() if ".mlflow[" in a}
    by_name = {v["secret_name"] for a, v in every_secret.items() if ".sso[" in a}
    every_certificate = resources(plan, "oci_certificates_management_certificate")
    certificates = {a.split('"')[1]: v["id"] for a, v in every_certificate.items() if a.startswith(
        "oci_certificates_management_certificate.vm[")}
    mysql_certificate = every_certificate['oci_certificates_management_certificate.service["mysql"]']["id"]
    # on OKE the load balancer's, which the worker nodes read (their pods present it)
    oke_certificate = every_certificate.get('oci_certificates_management_certificate.service["oke-lb"]', {}).get("id")
    # the secret that names a VM's certificate, read by its name (tls.tf)
    tls_names = {a.split('"')[1]: v["secret_name"] for a, v in every_secret.items() if ".tls[" in a}
    assert {role: base64.b64decode(v["secret_content"][0]["content"]).decode()
            for role, v in ((a.split('"')[1], v) for a, v in every_secret.items() if ".tls[" in a)} == certificates
    authorities = [v["id"] for v in resources(plan, "oci_certificates_management_certificate_authority").values()]
    instances = {v["freeform_tags"]["role"]: v["id"] for v in resources(plan, "oci_core_instance").values()}
    rules = {role: f"ALL {{instance.id = '{ocid}'}}" for role, ocid in instances.items()}
    for session in resources(plan, "oci_datascience_notebook_session").values():
        rules["notebook"] = f"ALL {{resource.type = 'datasciencenotebooksession', resource.id = '{session['id']}'}}"
    compartment = tfvars_of(d.inventory)["compartment_ocid"]
    # HeatWave's documented rule for its DB systems' resource principal: the DB system reads its certificate
    # while it is created, before it has an OCID a rule could name
    rules["mysql"] = f"ALL {{resource.type = 'mysqldbsystem', resource.compartment.id = '{compartment}'}}"
    namespaces = {v["name"] for v in resources(plan, "oci_identity_tag_namespace").values()}
    for pool in resources(plan, "oci_containerengine_node_pool").values():
        ((tag, value),) = pool["node_config_details"][0]["defined_tags"].items()
        assert tag.split(".")[0] in namespaces, f"the nodes' tag {tag} is not in this stack's own tag namespace"
        assert pool["compartment_id"] == compartment
        rules["workers"] = f"ALL {{instance.compartment.id = '{compartment}', tag.{tag}.value = '{value}'}}"
    log_group = next((v["id"] for v in resources(plan, "oci_logging_log_group").values()), None)
    return {"secrets": secrets, "by_name": by_name, "rules": rules, "bucket": d.outputs["bucket_name"],
            "log_group": log_group,
            "compartment": compartment, "certificates": certificates, "tls_names": tls_names,
            "ca": authorities[0] if authorities else None, "mysql_certificate": mysql_certificate,
            "oke_certificate": oke_certificate}


def grants(statements: list, subjects: dict, compartment: str) -> dict:
    """role -> {(verb, resource-type): set of targets}; every statement must parse, name a subject of this
    stack and the stack's compartment, and carry a condition."""
    out = {role: {} for role in subjects}
    role_of = {subject: role for role, subject in subjects.items()}
    for statement in statements:
        m = STATEMENT.match(statement)
        assert m, f"not a scoped statement: {statement}"
        assert m["subject"] in role_of, f"names a subject outside this stack: {statement}"
        where = m["where"]
        by_name = SECRET_BY_NAME.match(where)
        if m["resource"] == "secret-bundles" and by_name:
            targets = set(re.findall(r"target\.secret\.name = '([^']+)'", where))
        elif m["resource"] == "secret-bundles":
            assert SECRET_CONDITION.match(where), statement
            targets = set(re.findall(r"target\.secret\.id = '([^']+)'", where))
        elif m["resource"] == "leaf-certificate-bundles":
            leaf = LEAF_CONDITION.match(where)
            assert leaf, statement
            targets = {leaf[1]}
        elif m["resource"] == "instance-agent-command-execution-family":
            # Run Command: the VM takes only the commands addressed to itself
            assert where == "request.instance.id = target.instance.id", statement
            targets = {"itself"}
        elif m["resource"] == "certificate-authority-bundles":
            ca = CA_CONDITION.match(where)
            assert ca, statement
            targets = {ca[1]}
        elif m["resource"] == "metrics":
            # its own custom namespace only (Monitoring's policy reference: target.metrics.namespace)
            namespace = re.fullmatch(r"target\.metrics\.namespace = '([^']+)'", where)
            assert namespace, f"metrics: {statement}"
            targets = {namespace[1]}
        elif m["resource"] == "log-content":
            # the stack's log group only (Logging's policy reference: target.loggroup.id)
            group = re.fullmatch(r"target\.loggroup\.id = '([^']+)'", where)
            assert group, f"log-content: {statement}"
            targets = {group[1]}
        elif m["resource"] == "buckets":
            # the bucket's pre-authenticated requests alone, never the rest of `manage buckets`
            par = PAR_CONDITION.match(where)
            assert par, f"buckets: {statement}"
            targets = {par[1]}
        else:
            assert re.fullmatch(r"target\.bucket\.name = '[^']+'", where), statement
            targets = set(re.findall(r"'([^']+)'", where))
        assert m["compartment"] == compartment, statement
        out[role_of[m["subject"]]].setdefault((m["verb"], m["resource"]), set()).update(targets)
    return out


def expected_grants(facts: dict, roles, artifact_store: str) -> dict:
    secrets = facts["secrets"]
    # With per-person users the serving VM and the notebook each read their own login, never the admin's;
    # with the shared login both read that one.
    expected = {"tracking": {("read", "secret-bundles"): set(secrets.values()) | facts["by_name"]},
                "serving": {("read", "secret-bundles"): {secrets.get("serving-login", secrets["mlflow-login"])}},
                "notebook": {("read", "secret-bundles"): {secrets.get("notebook-login", secrets["mlflow-login"])}},
                # the tracking VM's but the MySQL administrator's: every pod of a basic cluster is a worker node
                "workers": {("read", "secret-bundles"): {v for k, v in secrets.items() if k != "mysql-admin"}
                            | facts["by_name"]}}
    if artifact_store == "oci":
        expected["tracking"][("manage", "objects")] = {facts["bucket"]}
        expected["workers"][("manage", "objects")] = {facts["bucket"]}
        expected["tracking"][("manage", "buckets")] = {facts["bucket"]}  # PAR_MANAGE only
        expected["workers"][("manage", "buckets")] = {facts["bucket"]}
    # each VM: its own certificate with the private key, the CA's, and the secret naming its certificate
    for role, certificate in facts["certificates"].items():
        expected[role][("read", "secret-bundles")] = expected[role][("read", "secret-bundles")] | {facts["tls_names"][role]}
        expected[role][("read", "leaf-certificate-bundles")] = {certificate}
        expected[role][("read", "certificate-authority-bundles")] = {facts["ca"]}
    # the OKE worker nodes: the load balancer's certificate with the private key, whose OCID their pods are
    # given (no secret), and the CA's
    if facts["oke_certificate"]:
        expected["workers"][("read", "leaf-certificate-bundles")] = {facts["oke_certificate"]}
        expected["workers"][("read", "certificate-authority-bundles")] = {facts["ca"]}
    # each VM ships its journal to the stack's log group (logging.tf), and to no other, and posts its metrics in
    # the namespace mlflow alone; on OKE the nodes' agent ships the pods' logs (logging.tf) and the metrics pods post
    # as their node (oke/base/metrics.yaml, proxy.yaml)
    for role in ("tracking", "serving", "workers"):
        expected[role][("use", "log-content")] = {facts["log_group"]}
        expected[role][("use", "metrics")] = {"mlflow"}
    # the tracking VM runs what orm-pack upgrade sends it through Run Command (its own commands only)
    expected["tracking"][("use", "instance-agent-command-execution-family")] = {"itself"}
    # the notebook: the CA's certificate, to verify the servers with (mlflow_connect.py)
    if facts["ca"]:
        expected["notebook"][("read", "certificate-authority-bundles")] = {facts["ca"]}
    return {role: expected[role] for role in roles}


@pytest.mark.parametrize("profile", PROFILES)
def test_the_vms_may_read_their_secrets_and_write_the_bucket_and_nothing_else(deployed, profile):
    d = deployed(profile)
    facts = stack_facts(d)
    tfvars = tfvars_of(d.inventory)
    groups = resources(d.replan, "oci_identity_dynamic_group")
    if tfvars.get("create_iam_policies", True):
        # the VMs' groups by role, and the DB system's, a resource of its own (it must not wait for the VMs)
        by_role = {address.split('"')[1] if '"' in address else address.split(".")[1].split("[")[0]: group
                   for address, group in groups.items()}
        assert set(by_role) == set(facts["rules"])
        for role, group in by_role.items():
            assert group["matching_rule"] == facts["rules"][role]
            assert group["compartment_id"] == tfvars["tenancy_ocid"]  # dynamic groups live in the tenancy
        subjects = {role: f"dynamic-group id {group['id']}" for role, group in by_role.items()}
        policies = resources(d.replan, "oci_identity_policy")
        policy = policies["oci_identity_policy.vm[0]"]
        service = policies.get("oci_identity_policy.datascience[0]", {}).get("statements", [])
        ca_policy = policies["oci_identity_policy.tls_ca[0]"]["statements"]
        mysql_policy = policies["oci_identity_policy.mysql_certificate[0]"]["statements"]
        lifecycle = policies["oci_identity_policy.object_lifecycle[0]"]["statements"]
        statements = policy["statements"]
        assert policy["compartment_id"] == facts["compartment"]
        assert statements + ca_policy + mysql_policy + service + lifecycle == d.outputs["iam_statements"]
    else:
        assert groups == {} and not any(a.startswith("oci_identity_policy.vm")
                                        for a in resources(d.replan, "oci_identity_policy"))
        rules = d.outputs["iam_dynamic_groups"]
        subjects = {}
        for name, rule in rules.items():
            role = name.split("-")[-2]
            assert rule == facts["rules"][role]
            subjects[role] = f"dynamic-group {name}"
        statements = [s for s in d.outputs["iam_statements"] if not s.startswith("Allow service ")]
        service = [s for s in d.outputs["iam_statements"] if s.startswith("Allow service datascience ")]
        lifecycle = [s for s in d.outputs["iam_statements"] if s.startswith("Allow service objectstorage-")]
    # Object Storage applies the bucket's lifecycle rules as itself: object-family of that bucket alone
    (bucket,) = [b["name"] for b in resources(d.replan, "oci_objectstorage_bucket").values() if "artifacts" in b["name"]]
    assert lifecycle == [f"Allow service objectstorage-{tfvars['region']} to manage object-family in compartment id "
                         f"{facts['compartment']} where target.bucket.name = '{bucket}'"]
    notebook = tfvars.get("create_notebook_session", False)
    assert service == ([f"Allow service datascience to use virtual-network-family in compartment id {facts['compartment']}"]
                       if notebook else [])
    # The CA may use its key, and only that key (a policy of its own: it is waited for before the CA).
    ca_key = [s for s in d.outputs["iam_statements"] if "request.principal.type = 'certificateauthority'" in s]
    keys = {k["id"] for a, k in resources(d.replan, "oci_kms_key").items() if a.startswith("oci_kms_key.tls_ca")}
    assert ca_key == [f"Allow any-user to use keys in compartment id {facts['compartment']} where all "
                      f"{{request.principal.type = 'certificateauthority', target.key.id = '{key}'}}" for key in keys]
    assert facts["ca"] and len(keys) == 1  # on every target: MySQL's certificate comes from it
    # The MySQL DB systems of the compartment read the DB system's certificate and nothing else (HeatWave
    # documents "read leaf-certificate-family" for bring your own certificate).
    mysql = [s for s in d.outputs["iam_statements"] if "leaf-certificate-family" in s]
    assert mysql == [f"Allow {subjects['mysql']} to read leaf-certificate-family in compartment id {facts['compartment']} "
                     f"where target.leaf-certificate.id = '{facts['mysql_certificate']}'"]
    statements = [s for s in statements if s not in ca_key + mysql]
    cluster = [s for s in statements if s.startswith("Allow any-user ")]
    clusters = [c["id"] for c in resources(d.replan, "oci_containerengine_cluster").values()]
    assert cluster == [f"Allow any-user to {grant} in compartment id {facts['compartment']} where all "
                       f"{{request.principal.type = 'cluster', request.principal.id = '{cluster_id}'}}"
                       for cluster_id in clusters for grant in ("read public-ips", "manage floating-ips")]
    readers = {role: subject for role, subject in subjects.items() if role != "mysql"}
    expected = expected_grants(facts, readers, tfvars.get("artifact_store", "oci"))
    assert grants([s for s in statements if s not in cluster], readers, facts["compartment"]) == expected


def test_a_wider_statement_is_caught():
    """The checker itself: a statement without a condition (every secret of the compartment) or for a
    subject of another stack is refused."""
    compartment = "ocid1.compartment.oc1..aaaaaaaahbi7m5qn5a66envartcbaj47n6h63dko6v2cc7hpv7njg7ysvevq"
    ours = "dynamic-group id ocid1.dynamicgroup.oc1..aaaaaaaa6ctajykefj2c4z6u7eyegz77ndpyejaulnhpn5vdnvifa26c3nka"
    other = "dynamic-group id ocid1.dynamicgroup.oc1..aaaaaaaayuia7jkgn7kptloz64i4er33tagnzbh3sjpxhq4kca36xoqytvfa"
    subjects = {"serving": ours}
    with pytest.raises(AssertionError, match="not a scoped statement"):
        grants([f"Allow {ours} to read secret-bundles in compartment id {compartment}"], subjects, compartment)
    with pytest.raises(AssertionError, match="outside this stack"):
        grants([f"Allow {other} to read secret-bundles in compartment id {compartment} where any {{target.secret.id = 'a'}}"],
               subjects, compartment)
    # a certificate's bundle without the bundle type named, or any certificate of the compartment
    with pytest.raises(AssertionError, match="leaf-certificate-bundles"):
        grants([f"Allow {ours} to read leaf-certificate-bundles in compartment id {compartment} where "
                f"target.leaf-certificate.id = 'a'"], subjects, compartment)
    with pytest.raises(AssertionError, match="not a scoped statement"):
        grants([f"Allow {ours} to read leaf-certificate-bundles in compartment id {compartment}"], subjects, compartment)
    # every permission of `manage buckets` (delete the bucket, change its policy), not its PARs only
    with pytest.raises(AssertionError, match="buckets"):
        grants([f"Allow {ours} to manage buckets in compartment id {compartment} where target.bucket.name = 'b'"],
               subjects, compartment)
    # Run Command for every instance of the compartment, not the VM's own commands only
    with pytest.raises(AssertionError, match="instance-agent-command-execution-family"):
        grants([f"Allow {ours} to use instance-agent-command-execution-family in compartment id {compartment} where "
                "request.instance.compartment.id = target.compartment.id"], subjects, compartment)
