"""deployment_target = "oke": the cluster, its network and what `orm-pack oke deploy` reads, from the plan
after apply (every value known).

OKE's rules the tests hold the stack to (OKE docs, "Network Resource Configuration for Cluster Creation
and Deployment", the security rules of a flannel-overlay cluster with a public Kubernetes API endpoint,
private worker nodes and a public load balancer): the API endpoint takes 6443 from its clients and 6443,
12250 and ICMP 3/4 from the workers, and talks TCP to the workers and HTTPS to OKE in the Oracle Services
Network; the workers talk to each other, take TCP from the control plane and the node ports 30000-32767
and kube-proxy's health port 10256 from the load balancer, and reach the API endpoint (6443, 12250) and
the Oracle Services Network; the load balancer takes its listener's port and reaches the node ports and
10256. OKE names its node images Oracle-Linux-<os>[-aarch64]-<date>-<n>-OKE-<kubernetes>-<build>
(node pool options); a basic cluster (BASIC_CLUSTER) has no control-plane charge."""
import json
import re

import pytest

from harness import static
from harness.terraform import Terraform

from .conftest import BASE_TFVARS, REPO, instance_user_data, repo_layout

IMAGE_A = "ocid1.image.oc1.iad.amaaaaaaxm5xzkrv2rfxw3lduoh6lw4xdrrsfi6pewml4wmxbczgpuuocf5q"
IMAGE_B = "ocid1.image.oc1.iad.amaaaaaa7mkba6cmv65rc4wnxvr3kzjvgbysdkynshdtlldr2myzinum7tha"
PRIVATEIP_A = "ocid1.privateip.oc1.iad.amaaaaaa6ai24q5xhpzsifsiqtzlkowmonm3jvagjwieealji533qnykz4hq"

pytestmark = pytest.mark.terraform

OKE = {**BASE_TFVARS, "deployment_target": "oke"}
SETTINGS_KEYS = {"cluster_id", "region", "namespace", "tracking_image", "tracking_env", "migrate_env", "login_user",
                 "login_password_secret_ocid", "lb_ip", "lb_subnet_id", "lb_nsg_id", "ingress_cidr", "mysql_cidr",
                 "workers_cidr", "max_request_body_mb", "tls_certificate_id", "tls_ca_id"}


def after(plan: dict, address: str) -> dict:
    return next(r["change"]["after"] for r in plan["resource_changes"] if r["address"] == address)


def resources(plan: dict, type_name: str) -> dict:
    return {r["address"]: r["change"]["after"] for r in plan["resource_changes"]
            if r["type"] == type_name and r["change"]["after"]}


def test_orm_pack_gets_the_cluster_the_network_and_the_tracking_settings(deployed):
    d = deployed("oke")
    out = d.outputs
    settings = out["oke_deploy_settings"]
    assert set(settings) == SETTINGS_KEYS and all(isinstance(v, str) for v in settings.values())
    cluster = after(d.replan, "oci_containerengine_cluster.mlflow[0]")
    secrets = out["vault_secrets"]
    mysql = after(d.replan, "oci_mysql_mysql_db_system.mlflow")
    assert settings["cluster_id"] == out["oke_cluster_id"] == cluster["id"]
    assert settings["region"] == "us-ashburn-1" and settings["namespace"] == "mlflow"
    release = (REPO / "VERSION").read_text().strip()
    assert settings["tracking_image"] == f"ghcr.io/oracle-quickstart/oci-mlflow-tracking:{release}"
    assert settings["login_user"] == "mlflow" and settings["login_password_secret_ocid"] == secrets["mlflow-login"]
    # the load balancer Kubernetes creates goes into the public subnet behind the oke-lb NSG
    assert settings["lb_subnet_id"] == after(d.replan, 'oci_core_subnet.mlflow["public"]')["id"]
    assert cluster["options"][0]["service_lb_subnet_ids"] == [settings["lb_subnet_id"]]
    assert settings["lb_nsg_id"] == after(d.replan, 'oci_core_network_security_group.role["oke-lb"]')["id"]
    assert settings["ingress_cidr"] == BASE_TFVARS["allowed_ingress_cidr"]
    # at the stack's reserved address, so the MLflow URL is known before Kubernetes creates the load balancer
    reserved = after(d.replan, "oci_core_public_ip.oke_lb[0]")
    assert reserved["lifetime"] == "RESERVED" and reserved["private_ip_id"] is None
    assert settings["lb_ip"] == reserved["ip_address"] == out["tracking_public_ip"]
    assert out["mlflow_url"] == f"https://{reserved['ip_address']}"
    assert f"MLFLOW_TRACKING_URI={out['mlflow_url']}\n" in out["notebook_setup"]
    assert settings["mysql_cidr"] == f"{mysql['ip_address']}/32" == f"{out['mysql_private_ip']}/32"
    assert settings["workers_cidr"] == after(d.replan, 'oci_core_subnet.mlflow["oke_workers"]')["cidr_block"]
    assert settings["max_request_body_mb"] == "64"  # the form's default, for the proxy pods
    assert json.loads(settings["migrate_env"]) == {"MYSQL_ADMIN_USER": "mlflowadmin",
                                                   "MYSQL_ADMIN_PASSWORD_SECRET_OCID": secrets["mysql-admin"]}
    env = json.loads(settings["tracking_env"])
    assert env["MLFLOW_DB_HOST"] == mysql["ip_address"] and env["MLFLOW_DB_PASSWORD_SECRET_OCID"] == secrets["mlflow-db"]
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == out["artifact_store"]
    assert (env["MLFLOW_HOST"], env["MLFLOW_PORT"], env["MLFLOW_WORKERS"]) == ("0.0.0.0", "5000", "2")
    assert out["oke_kubeconfig_command"] == (
        f"oci ce cluster create-kubeconfig --cluster-id {cluster['id']} --file $HOME/.kube/config "
        "--region us-ashburn-1 --token-version 2.0.0 --kube-endpoint PUBLIC_ENDPOINT")


def test_the_pods_get_the_tracking_vms_settings_but_the_administrators(deployed):
    """The same names as the tracking VM's tracking.env, less the MySQL administrator's, which only the
    migrations Job gets (migrate_env)."""
    vm_text = static.decode_user_data(instance_user_data(deployed("default").replan)['oci_core_instance.vm["tracking"]'])
    vm_env = dict(line.split("=", 1) for line in static.written_files(vm_text)["/etc/mlflow/tracking.env"].splitlines()
                  if line)
    settings = deployed("oke").outputs["oke_deploy_settings"]
    pod_env = json.loads(settings["tracking_env"])
    admin = {"MYSQL_ADMIN_USER", "MYSQL_ADMIN_PASSWORD_SECRET_OCID"}
    # MySQL's CA file: the manifests name the one their init container writes (oke/base/tracking.yaml)
    assert set(pod_env) == set(vm_env) - admin - {"MLFLOW_DB_SSL_CA"}
    # the manifest tests' saved copy of this output (tests/oke/settings.json) has the same settings
    saved = json.loads((REPO / "tests" / "oke" / "settings.json").read_text())
    assert set(json.loads(saved["tracking_env"])) == set(pod_env)
    assert set(json.loads(settings["migrate_env"])) == admin

    def same_everywhere(env):  # but what is the deployment's own: its DB's address, its secrets, where MLflow listens
        return {k: v for k, v in env.items() if k in pod_env and not k.endswith("_SECRET_OCID")
                and k not in ("MLFLOW_DB_HOST", "MLFLOW_HOST")}
    assert same_everywhere(pod_env) == same_everywhere(vm_env)


def _rule_graph(plan: dict) -> set:
    """(group, direction, peer, protocol, ports or ICMP) of every NSG rule, peers named by their group."""
    groups = {v["id"]: address.split('"')[1]
              for address, v in resources(plan, "oci_core_network_security_group").items()}
    graph = set()
    for rule in resources(plan, "oci_core_network_security_group_security_rule").values():
        ingress = rule["direction"] == "INGRESS"
        peer = rule["source"] if ingress else rule["destination"]
        peer_type = rule["source_type"] if ingress else rule["destination_type"]
        peer = {"NETWORK_SECURITY_GROUP": groups.get(peer), "SERVICE_CIDR_BLOCK": "oracle-services"}.get(peer_type, peer)
        ports = ((rule["tcp_options"][0]["destination_port_range"][0]["min"],
                  rule["tcp_options"][0]["destination_port_range"][0]["max"]) if rule["tcp_options"] else
                 ("icmp", rule["icmp_options"][0]["type"], rule["icmp_options"][0]["code"]) if rule["icmp_options"]
                 else "any")
        graph.add((groups[rule["network_security_group_id"]], rule["direction"], peer, rule["protocol"], ports))
    return graph


def test_the_network_is_what_oke_documents_and_nothing_more(deployed):
    d = deployed("oke")
    me, anywhere, osn = BASE_TFVARS["allowed_ingress_cidr"], "0.0.0.0/0", "oracle-services"
    tcp, udp, icmp34 = "6", "17", ("icmp", 3, 4)
    assert _rule_graph(d.replan) == {
        ("oke-api", "INGRESS", me, tcp, (6443, 6443)),
        ("oke-api", "INGRESS", "oke-workers", tcp, (6443, 6443)),
        ("oke-api", "INGRESS", "oke-workers", tcp, (12250, 12250)),
        ("oke-api", "INGRESS", "oke-workers", "1", icmp34),
        ("oke-api", "EGRESS", "oke-workers", tcp, "any"),
        ("oke-api", "EGRESS", "oke-workers", "1", icmp34),
        ("oke-api", "EGRESS", osn, tcp, (443, 443)),
        ("oke-workers", "INGRESS", "oke-workers", tcp, "any"),
        ("oke-workers", "INGRESS", "oke-workers", udp, "any"),
        ("oke-workers", "INGRESS", "oke-api", tcp, "any"),
        ("oke-workers", "INGRESS", "oke-api", "1", icmp34),
        ("oke-workers", "INGRESS", "oke-lb", tcp, (30000, 32767)),
        ("oke-workers", "INGRESS", "oke-lb", tcp, (10256, 10256)),
        ("oke-workers", "EGRESS", "oke-workers", "all", "any"),
        ("oke-workers", "EGRESS", "oke-api", tcp, (6443, 6443)),
        ("oke-workers", "EGRESS", "oke-api", tcp, (12250, 12250)),
        ("oke-workers", "EGRESS", osn, tcp, "any"),
        ("oke-workers", "EGRESS", anywhere, tcp, (443, 443)),  # container images, through the NAT gateway
        ("oke-workers", "EGRESS", anywhere, "1", icmp34),
        ("oke-workers", "EGRESS", "mysql", tcp, (3306, 3306)),
        ("oke-lb", "INGRESS", me, tcp, (443, 443)),
        ("oke-lb", "EGRESS", "oke-workers", tcp, (30000, 32767)),
        ("oke-lb", "EGRESS", "oke-workers", tcp, (10256, 10256)),
        ("mysql", "INGRESS", "oke-workers", tcp, (3306, 3306)),
    }
    # the API endpoint is public but behind its NSG; the workers have no public address
    cluster = after(d.replan, "oci_containerengine_cluster.mlflow[0]")
    endpoint = cluster["endpoint_config"][0]
    assert endpoint["is_public_ip_enabled"] is True
    assert endpoint["nsg_ids"] == [after(d.replan, 'oci_core_network_security_group.role["oke-api"]')["id"]]
    assert endpoint["subnet_id"] == after(d.replan, 'oci_core_subnet.mlflow["oke_api"]')["id"]
    (pool,) = resources(d.replan, "oci_containerengine_node_pool").values()
    workers = after(d.replan, 'oci_core_subnet.mlflow["oke_workers"]')
    assert workers["prohibit_public_ip_on_vnic"] is True
    assert {p["subnet_id"] for p in pool["node_config_details"][0]["placement_configs"]} == {workers["id"]}
    assert pool["node_config_details"][0]["nsg_ids"] == [
        after(d.replan, 'oci_core_network_security_group.role["oke-workers"]')["id"]]
    routes = {r["destination"]: r["network_entity_id"]
              for r in after(d.replan, 'oci_core_route_table.mlflow["oke_workers"]')["route_rules"]}
    assert routes == {"0.0.0.0/0": after(d.replan, 'oci_core_nat_gateway.mlflow["oke"]')["id"],
                      "all-iad-services-in-oracle-services-network": after(d.replan, "oci_core_service_gateway.oke[0]")["id"]}
    # no VM, no VM network rule, no runtime lock for a VM to build with; one public IP, the load balancer's
    assert not any(r["type"] in ("oci_core_instance", "oci_objectstorage_object") for r in d.replan["resource_changes"])
    assert list(resources(d.replan, "oci_core_public_ip")) == ["oci_core_public_ip.oke_lb[0]"]


def test_vm_profiles_have_nothing_of_oke(deployed):
    d = deployed("default")
    assert not any(r["type"].startswith("oci_containerengine_") or r["type"].startswith("oci_identity_tag")
                   for r in d.replan["resource_changes"])
    assert d.outputs.get("oke_cluster_id") is None
    assert (d.outputs["oke_deploy_settings"], d.outputs["oke_kubeconfig_command"], d.outputs["oke_next_command"]) == (
        {}, "", "")


def _node_pool_options(extra_sources: list) -> dict:
    fixtures = json.loads((REPO / "tests" / "harness" / "double" / "fixtures.json").read_text())
    options = fixtures["oci_containerengine_node_pool_option"]
    return {"oci_containerengine_node_pool_option": {**options, "sources": extra_sources + options["sources"]}}


def _pools(plan: dict) -> dict:
    return {r["address"]: (r["change"]["actions"], (r["change"]["after"] or {}).get("node_source_details"))
            for r in plan["resource_changes"] if r["type"] == "oci_containerengine_node_pool"}


def test_the_node_pool_keeps_its_image_until_told_otherwise(tmp_path):
    """OKE publishes node images about monthly: a newer one must not change the pool on the next apply (as
    the VMs keep theirs). Choosing an image, or a new Kubernetes version (OKE's out-of-place node upgrade),
    replaces the pool with one on the new image; the new pool takes the cluster's version."""
    workdir = repo_layout(tmp_path / "stack")
    first = Terraform(workdir)
    first.init()
    first.apply(OKE)
    newer = {"source_type": "IMAGE", "source_name": "Oracle-Linux-8.10-2026.11.20-0-OKE-1.34.2-1700",
             "image_id": IMAGE_A}
    later = Terraform(workdir, fixtures=_node_pool_options([newer]))
    unrelated = later.plan({**OKE, "allowed_ingress_cidr": "198.51.100.0/24"})
    assert {a: actions for a, (actions, _) in _pools(unrelated).items()} == {
        'oci_containerengine_node_pool.workers["v1.34.2"]': ["no-op"]}
    chosen = later.plan({**OKE, "oke_node_image_id": IMAGE_A})
    created = {a: source for a, (actions, source) in _pools(chosen).items() if actions == ["create"]}
    assert [s[0]["image_id"] for s in created.values()] == [IMAGE_A]
    assert [a for a, (actions, _) in _pools(chosen).items() if actions == ["delete"]] == [
        'oci_containerengine_node_pool.workers["v1.34.2"]']
    upgraded = later.plan({**OKE, "kubernetes_version": "v1.34.10"})
    assert {a: (actions, source and source[0]["image_id"]) for a, (actions, source) in _pools(upgraded).items()} == {
        'oci_containerengine_node_pool.workers["v1.34.2"]': (["delete"], None),
        'oci_containerengine_node_pool.workers["v1.34.10"]': (["create"], IMAGE_B)}


def test_an_arm_node_pool_runs_the_aarch64_image_within_the_always_free_allowance(tmp_path):
    tf = Terraform(repo_layout(tmp_path / "stack"))
    tf.init()
    plan = tf.plan_summary({**OKE, "oke_node_shape": "VM.Standard.A1.Flex", "oke_node_ocpus": 1, "oke_node_memory_gb": 6,
                            "mysql_shape": "MySQL.Free"})
    (pool,) = [v for a, v in plan.values.items() if a.startswith("oci_containerengine_node_pool.")]
    assert pool["node_shape"] == "VM.Standard.A1.Flex"
    assert pool["node_source_details"][0]["image_id"] == "ocid1.image.oc1.iad.amaaaaaag7pytke26jjv4aougilohm4a7kqjdakshxw5wmg55uzjykqfimeq"
    size = pool["node_config_details"][0]["size"]
    assert size * pool["node_shape_config"][0]["ocpus"] <= 2 and size * pool["node_shape_config"][0]["memory_in_gbs"] <= 12
    from orm_pack.deploy.cost import estimate_plan

    estimate = estimate_plan(plan.raw)
    assert estimate.not_priced == ()
    nodes = [line for line in estimate.lines if line.address.startswith("oci_containerengine_node_pool.")]
    assert [line.item for line in nodes] == ["VM.Standard.A1.Flex, 1 OCPU, 6 GB", "boot volume, 50 GB"] * 2
    assert sum(line.list_monthly for line in nodes) > 0
    assert estimate.total == 0, [line for line in estimate.lines if line.monthly]


def test_the_nodes_may_do_what_the_tracking_vm_may_but_read_the_mysql_admin_secret(deployed):
    """The pods act as their node: the workers' dynamic group gets the tracking VM's statements, on this
    stack's secrets and bucket (test_iam.py checks the scoping on every profile), less the MySQL
    administrator's secret: every pod of a basic cluster has the nodes' identity."""
    def grants(d, role):
        group = resources(d.replan, "oci_identity_dynamic_group")[f'oci_identity_dynamic_group.vm["{role}"]']["id"]
        names = {ocid: name for name, ocid in d.outputs["vault_secrets"].items()}
        return [re.sub(r"'(ocid1\.vaultsecret[^']+)'", lambda m: f"'{names[m.group(1)]}'", s.split(" ", 4)[4])
                .replace(d.outputs["bucket_name"], "<bucket>")
                for s in d.outputs["iam_statements"] if s.startswith(f"Allow dynamic-group id {group} ")]

    oke = deployed("oke")
    every = grants(oke, "workers")
    workers = [s for s in every if "certificate" not in s]
    # TLS (tls.tf): a VM reads its certificate's OCID from a secret by name; the pods get the load balancer's
    # certificate OCID in their settings, and read that certificate with its key and the CA's bundle.
    # ...nor Run Command, which is the tracking VM's (orm-pack upgrade sends it its checks; pods have no agent),
    # The logs (logging.tf: the nodes' agent ships the pods') and the metrics (oke/base/metrics.yaml) go alike.
    tracking = [s for s in grants(deployed("default"), "tracking")
                if "certificate" not in s and "mlflow-tls-" not in s and "instance-agent-command" not in s]
    assert len(workers) == 5 and "'mysql-admin'" not in workers[0] and "'mysql-admin'" in tracking[0]
    assert workers == [tracking[0].replace("target.secret.id = 'mysql-admin', ", ""), *tracking[1:]]
    settings = oke.outputs["oke_deploy_settings"]
    assert [s for s in every if "certificate" in s] == [
        "to read leaf-certificate-bundles in compartment id {} where all {{target.leaf-certificate.id = '{}', "
        "target.leaf-certificate.bundle-type = 'CERTIFICATE_CONTENT_WITH_PRIVATE_KEY'}}".format(
            BASE_TFVARS["compartment_ocid"], settings["tls_certificate_id"]),
        "to read certificate-authority-bundles in compartment id {} where target.certificate-authority.id = '{}'".format(
            BASE_TFVARS["compartment_ocid"], settings["tls_ca_id"])]


def test_without_iam_the_administrator_gets_the_nodes_rule_and_the_tag_exists(tmp_path):
    """create_iam_policies = false: no dynamic group or policy, but the nodes still carry the stack's tag
    (the node pool needs it to exist), and the output gives the administrator the rule that matches it."""
    tf = Terraform(repo_layout(tmp_path / "stack"))
    tf.init()
    plan = tf.plan_summary({**OKE, "create_iam_policies": False})
    assert "oci_identity_dynamic_group" not in plan.counts and "oci_identity_policy" not in plan.counts
    assert plan.counts["oci_identity_tag_namespace"] == plan.counts["oci_identity_tag"] == 1
    assert plan.outputs["iam_dynamic_groups"] == {"mlflow-workers-86dc8520": (
        "ALL {instance.compartment.id = 'ocid1.compartment.oc1..aaaaaaaahbi7m5qn5a66envartcbaj47n6h63dko6v2cc7hpv7njg7ysvevq', "
        "tag.mlflow-oke-86dc8520.node-pool.value = 'mlflow-workers'}"),
        # the MySQL DB system's, which reads its certificate (iam.tf)
        "mlflow-mysql-86dc8520": ("ALL {resource.type = 'mysqldbsystem', resource.compartment.id = "
                                  "'ocid1.compartment.oc1..aaaaaaaahbi7m5qn5a66envartcbaj47n6h63dko6v2cc7hpv7njg7ysvevq'}")}
    # an agent configuration names its hosts by dynamic group OCID: none here, and the output says what to add
    assert "oci_logging_unified_agent_configuration" not in plan.counts
    assert "an administrator adds an agent configuration for the nodes' dynamic group" in plan.outputs["observability"]


def test_the_nodes_agent_ships_every_container_of_the_namespace_to_the_service_log(deployed):
    """OKE's Oracle Linux nodes run the Oracle Cloud Agent; an agent configuration associated with the nodes'
    dynamic group has its Custom Logs Monitoring plugin tail the kubelet's container logs of MLflow's namespace
    (CRI format) into the stack's service log. Logging's API reference: LOG_TAIL sources, the CRI parser,
    groupAssociation.groupList of dynamic group OCIDs."""
    d = deployed("oke")
    (config,) = resources(d.replan, "oci_logging_unified_agent_configuration").values()
    (log,) = resources(d.replan, "oci_logging_log").values()
    group = resources(d.replan, "oci_identity_dynamic_group")['oci_identity_dynamic_group.vm["workers"]']
    service = config["service_configuration"][0]
    (source,) = service["sources"]
    assert (config["is_enabled"], service["configuration_type"], source["source_type"]) == (True, "LOGGING", "LOG_TAIL")
    assert source["paths"] == ["/var/log/containers/*_mlflow_*.log"]
    assert source["parser"][0]["parser_type"] == "CRI"
    assert service["destination"][0]["log_object_id"] == log["id"] and log["display_name"] == "mlflow-service"
    assert config["group_association"][0]["group_list"] == [group["id"]]
    assert config["id"].startswith("ocid1.unifiedagentconfiguration.oc1.")
    assert "log group mlflow-logs > mlflow-service (every container of namespace mlflow" in d.outputs["observability"]


def test_the_load_balancer_keeps_its_reserved_address_once_kubernetes_assigned_it(tmp_path):
    """OKE's cloud controller assigns the reserved IP to the load balancer it creates for the Service
    (spec.loadBalancerIP): the IP's private_ip_id then names the load balancer's private IP, a change made
    outside Terraform. The next apply must leave it there, not unassign MLflow's address."""
    workdir = repo_layout(tmp_path / "stack")
    tf = Terraform(workdir)
    tf.init()
    tf.apply(OKE)
    state_file = workdir / "terraform.tfstate"
    state = json.loads(state_file.read_text())
    (reserved,) = [r for r in state["resources"] if r["type"] == "oci_core_public_ip" and r["name"] == "oke_lb"]
    attributes = reserved["instances"][0]["attributes"]
    attributes.update(private_ip_id=PRIVATEIP_A, assigned_entity_type="PRIVATE_IP",
                      assigned_entity_id=PRIVATEIP_A)
    state["serial"] += 1
    state_file.write_text(json.dumps(state))
    assert tf.plan_exit_code(OKE).returncode == 0, "a re-plan would change the assigned reserved IP"
