"""The Container Engine API's kubeconfig call (`POST /20180222/clusters/{id}/kubeconfig/content`) beside
the Resource Manager fake, on the same loopback server and signature check: what `orm-pack oke` uses.

Rules of the real API it keeps (Container Engine API reference, CreateKubeconfig):
- the cluster must exist in the region: 404 NotAuthorizedOrNotFound otherwise;
- `endpoint` PUBLIC_ENDPOINT needs a cluster whose API endpoint has a public IP (400 otherwise);
- `tokenVersion` is 1.0.0 or 2.0.0.
The kubeconfig names the cluster's endpoint and a user whose token comes from
`oci ce cluster generate-token --cluster-id <id> --region <region>`, as the real one does.
"""
from dataclasses import dataclass

import yaml

from .tfstate import managed_attributes

API = "/20180222"
TOKEN_VERSIONS = ("1.0.0", "2.0.0")
ENDPOINTS = ("LEGACY_KUBERNETES", "PUBLIC_ENDPOINT", "PRIVATE_ENDPOINT", "VCN_HOSTNAME")


class ContainerEngineError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Cluster:
    id: str
    region: str
    public_endpoint: str | None    # "203.0.113.10:6443"; None: private endpoint only
    private_endpoint: str = "10.0.4.2:6443"


def clusters_in_state(state: dict) -> dict:
    """The OKE clusters a Terraform state holds, by OCID."""
    found = {}
    for attributes in managed_attributes(state, "oci_containerengine_cluster"):
        endpoints = (attributes.get("endpoints") or [{}])[0]
        public = endpoints.get("public_endpoint") or None
        region = attributes["id"].split(".")[3] or "us-phoenix-1"
        found[attributes["id"]] = Cluster(attributes["id"], region, public,
                                          endpoints.get("private_endpoint") or "10.0.4.2:6443")
    return found


def is_container_engine(path: str) -> bool:
    return path.startswith(API + "/")


def kubeconfig(cluster: Cluster, endpoint: str) -> str:
    address = cluster.public_endpoint if endpoint == "PUBLIC_ENDPOINT" else cluster.private_endpoint
    name = f"cluster-{cluster.id[-11:]}"
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": f"context-{cluster.id[-11:]}",
        "clusters": [{"name": name, "cluster": {"server": f"https://{address}",
                                                "certificate-authority-data": "LS0tLS1CRUdJTg=="}}],
        "contexts": [{"name": f"context-{cluster.id[-11:]}", "context": {"cluster": name, "user": f"user-{name}"}}],
        "users": [{"name": f"user-{name}", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "oci",
            "args": ["ce", "cluster", "generate-token", "--cluster-id", cluster.id, "--region", cluster.region],
            "env": []}}}],
    }, sort_keys=False)


def handle(clusters: dict, method: str, path: str, payload: dict) -> tuple[int, str]:
    """(status, kubeconfig text) for one request; raises ContainerEngineError."""
    parts = path[len(API) + 1:].split("/")
    if method != "POST" or len(parts) != 4 or parts[0] != "clusters" or parts[2:] != ["kubeconfig", "content"]:
        raise ContainerEngineError(404, "NotFound", f"no route for {method} {path}")
    cluster = clusters.get(parts[1])
    if cluster is None:
        raise ContainerEngineError(404, "NotAuthorizedOrNotFound", f"Cluster {parts[1]} not found")
    token_version = payload.get("tokenVersion", "1.0.0")
    endpoint = payload.get("endpoint", "LEGACY_KUBERNETES")
    if token_version not in TOKEN_VERSIONS:
        raise ContainerEngineError(400, "InvalidParameter", f"tokenVersion must be one of {TOKEN_VERSIONS}")
    if endpoint not in ENDPOINTS:
        raise ContainerEngineError(400, "InvalidParameter", f"endpoint must be one of {ENDPOINTS}")
    if endpoint == "PUBLIC_ENDPOINT" and not cluster.public_endpoint:
        raise ContainerEngineError(400, "InvalidParameter", "The cluster does not have a public endpoint")
    return 200, kubeconfig(cluster, endpoint)
