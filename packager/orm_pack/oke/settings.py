"""What a deployment on OKE needs from the stack: its `oke_deploy_settings` output, checked.

Every value is required; a missing or malformed one is an error naming the output key and what to
do, so nothing half-filled reaches the manifests.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass

from orm_pack.cloud import ocids
from orm_pack.errors import ExitCode, UserError

OUTPUT = "oke_deploy_settings"
NAMESPACE = "mlflow"
PROXY_PORT = "8443"
TRACKING_UPSTREAM = "mlflow-tracking:5000"
METRICS_SETTINGS = ("MLFLOW_METRICS_COMPARTMENT_OCID", "MLFLOW_METRICS_DEPLOYMENT")

IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class DeploySettings:
    cluster_id: str
    region: str
    tracking_image: str
    tracking_env: dict
    migrate_env: dict              # the migrate Job's settings but the administrator's password
    admin_password_secret_ocid: str  # read by orm-pack with the user's key, never by the cluster
    login_user: str
    login_password_secret_ocid: str
    lb_ip: str
    lb_subnet_id: str
    lb_nsg_id: str
    ingress_cidr: str
    mysql_cidr: str
    # TLS (stack/tls.tf): the certificate the proxy pods present for lb_ip, and the CA that issued it
    tls_certificate_id: str = ""
    tls_ca_id: str = ""
    max_request_body_mb: str = "64"  # the stack's max_request_body_mb; stacks before it had none

    def proxy_env(self) -> dict:
        """The proxy pod's settings (docker/nginx/setup-from-vault.sh and render.sh; its metrics sidecar's). With
        MLflow's own users (MLFLOW_AUTH mlflow or oidc) the proxy passes logins on instead of checking the one login."""
        own_users = self.tracking_env.get("MLFLOW_AUTH", "proxy") != "proxy"
        return {"PROXY_AUTH": "upstream" if own_users else "proxy",
                "PROXY_LOGIN_USER": self.login_user,
                "PROXY_LOGIN_PASSWORD_SECRET_OCID": self.login_password_secret_ocid,
                "PROXY_LISTEN_PORT": PROXY_PORT, "PROXY_UPSTREAM": TRACKING_UPSTREAM, "PROXY_SERVER_NAME": "_",
                "PROXY_MAX_BODY_MB": self.max_request_body_mb,
                "MLFLOW_OCI_AUTH": self.tracking_env.get("MLFLOW_OCI_AUTH", "instance_principal"),
                # the request-metrics sidecar's: where and as what the proxy's requests are posted
                **{name: self.tracking_env[name] for name in METRICS_SETTINGS if name in self.tracking_env}}

    def tls_env(self) -> dict:
        """Every pod's TLS settings (docker/nginx/tls-from-oci.sh): the proxy pods read the certificate with
        its key, every pod the CA's certificate (the tracking pods verify MySQL with it)."""
        return {"TLS_CERTIFICATE_OCID": self.tls_certificate_id, "TLS_CA_OCID": self.tls_ca_id}

    def deploy_values(self) -> dict:
        """What the overlay's replacements put into the manifests."""
        return {"tracking_image": self.tracking_image, "lb_ip": self.lb_ip, "lb_subnet_id": self.lb_subnet_id,
                "lb_nsg_id": self.lb_nsg_id, "ingress_cidr": self.ingress_cidr, "mysql_cidr": self.mysql_cidr}


def _problem(key: str, what: str) -> UserError:
    return UserError(f"stack output {OUTPUT}: {key} {what}; apply the stack with deployment_target = \"oke\" "
                     "(orm-pack apply --var deployment_target=oke), then run this again", ExitCode.USAGE)


def _text(raw: dict, key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _problem(key, "is missing")
    return value.strip()


def _ocid(raw: dict, key: str, kind: str) -> str:
    value = _text(raw, key)
    ocid = ocids.parse(value)
    if ocid is None or ocid.type != kind:
        raise _problem(key, f"is not an OCID of a {kind} (got {value!r})")
    return value


def _tls(raw: dict, key: str, kind: str) -> str:
    """The proxy pods present a certificate from the stack's CA: a stack applied before OKE had one gives
    none, and the pods would have nothing clients can verify."""
    if not raw.get(key):
        raise UserError(f"stack output {OUTPUT}: {key} is missing: the stack was applied before OKE's load balancer "
                        "had a certificate from the stack's CA; apply it again (orm-pack apply), then run this "
                        "again", ExitCode.USAGE)
    return _ocid(raw, key, kind)


def _cidr(raw: dict, key: str) -> str:
    value = _text(raw, key)
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise _problem(key, f"is not a CIDR block (got {value!r})") from None


def _ipv4(raw: dict, key: str) -> str:
    value = _text(raw, key)
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise _problem(key, f"is not an IPv4 address (got {value!r})") from None


def _whole_number(raw: dict, key: str, default: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]{0,4}", value):
        raise _problem(key, f"is not a whole number (got {value!r})")
    return value


def _env(raw: dict, key: str) -> dict:
    text = _text(raw, key)
    try:
        env = json.loads(text)
    except ValueError:
        raise _problem(key, "is not a JSON object") from None
    if not isinstance(env, dict) or not env:
        raise _problem(key, "is not a JSON object of settings")
    for name, value in env.items():
        if not ENV_NAME.match(name) or not isinstance(value, str) or "\n" in value:
            raise _problem(key, f"has a bad setting {name!r}")
    return env


def from_output(raw, image_override: str | None = None) -> DeploySettings:
    """DeploySettings from the output's value (a map of strings); `image_override` (--image) replaces the
    release's tracking image."""
    if raw in (None, "", {}):
        raise UserError(f"the stack has no {OUTPUT} output (or it is empty): apply the stack with "
                        "deployment_target = \"oke\" (orm-pack apply --var deployment_target=oke) first",
                        ExitCode.USAGE)
    if not isinstance(raw, dict):
        raise _problem("", "is not a map")
    image = image_override or raw.get("tracking_image") or ""
    if not image:
        raise UserError(f"stack output {OUTPUT}: tracking_image is empty (the stack's container_registry is "
                        "empty): pass --image <registry>/oci-mlflow-tracking:<version>", ExitCode.USAGE)
    if not IMAGE.match(image):
        where = "--image" if image_override else f"stack output {OUTPUT}: tracking_image"
        raise UserError(f"{where} must be <registry>/<path>:<tag> or …@sha256:<digest> (got {image!r})",
                        ExitCode.USAGE)
    namespace = raw.get("namespace", NAMESPACE)
    if namespace != NAMESPACE:
        raise _problem("namespace", f"is {namespace!r}; the manifests use {NAMESPACE!r}")
    tracking_env = _env(raw, "tracking_env")
    migrate_env = _env(raw, "migrate_env")
    if any(name.startswith("MYSQL_ADMIN") for name in tracking_env):
        raise _problem("tracking_env", "holds the MySQL administrator's settings, which only the migrate Job gets")
    # The worker nodes may not read the administrator's secret (every pod of a basic cluster has the
    # nodes' identity): orm-pack reads it with the user's key and hands it to the migrate Job alone.
    admin_secret = _ocid(migrate_env, "MYSQL_ADMIN_PASSWORD_SECRET_OCID", "vaultsecret")
    _text(migrate_env, "MYSQL_ADMIN_USER")
    migrate_env = {name: value for name, value in migrate_env.items() if name != "MYSQL_ADMIN_PASSWORD_SECRET_OCID"}
    return DeploySettings(
        cluster_id=_ocid(raw, "cluster_id", "cluster"), region=_text(raw, "region"), tracking_image=image,
        tracking_env=tracking_env, migrate_env=migrate_env, admin_password_secret_ocid=admin_secret, login_user=_text(raw, "login_user"),
        login_password_secret_ocid=_ocid(raw, "login_password_secret_ocid", "vaultsecret"),
        lb_ip=_ipv4(raw, "lb_ip"), lb_subnet_id=_ocid(raw, "lb_subnet_id", "subnet"),
        lb_nsg_id=_ocid(raw, "lb_nsg_id", "networksecuritygroup"),
        ingress_cidr=_cidr(raw, "ingress_cidr"), mysql_cidr=_cidr(raw, "mysql_cidr"),
        tls_certificate_id=_tls(raw, "tls_certificate_id", "certificate"),
        tls_ca_id=_tls(raw, "tls_ca_id", "certificateauthority"),
        max_request_body_mb=_whole_number(raw, "max_request_body_mb", default="64"))
