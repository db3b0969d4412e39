"""Command lines and environments of the runtime services, as the VMs run them (docker/ entrypoints),
for `orm-pack local`, the data-plane tests and the benchmarks."""
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from orm_pack.local.credentials import Credentials
from orm_pack.local.runtime_files import RuntimeFiles


def python_env(base: dict | None = None) -> dict:
    """The environment with this interpreter's bin directory first on PATH (mlflow, uvicorn)."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass(frozen=True)
class TrackingConfig:
    port: int
    artifacts_destination: str
    backend_store_uri: str | None = None       # None: MySQL from MLFLOW_DB_* in `extra_env`
    s3_endpoint: str | None = None
    workers: int | None = None                 # None: the entrypoint's default
    allowed_hosts: str | None = None
    extra_env: tuple[tuple[str, str], ...] = ()


def tracking_argv(runtime: RuntimeFiles) -> list[str]:
    return ["bash", str(runtime.tracking_entrypoint)]


def tracking_env(config: TrackingConfig, base: dict | None = None) -> dict:
    env = python_env(base)
    env.update({"MLFLOW_HOST": "127.0.0.1", "MLFLOW_PORT": str(config.port),
                "MLFLOW_ARTIFACTS_DESTINATION": config.artifacts_destination})
    optional = {"MLFLOW_BACKEND_STORE_URI": config.backend_store_uri, "MLFLOW_S3_ENDPOINT_URL": config.s3_endpoint,
                "MLFLOW_WORKERS": str(config.workers) if config.workers else None,
                "MLFLOW_ALLOWED_HOSTS": config.allowed_hosts}
    env.update({name: value for name, value in optional.items() if value})
    env.update(dict(config.extra_env))
    return env


@dataclass(frozen=True)
class ServingConfig:
    port: int
    tracking_uri: str
    credentials: Credentials
    model_name: str = ""
    model_alias: str = "champion"
    model_uri: str = ""
    poll_seconds: float = 10
    tracking_ca_file: str | None = None        # the CA the tracking server's certificate is verified with
    insecure_tls: bool = False                 # not verified at all (test stacks with a self-signed certificate)


def serving_argv(runtime: RuntimeFiles) -> list[str]:
    return [sys.executable, str(runtime.serving_supervisor)]


def serving_env(config: ServingConfig, base: dict | None = None) -> dict:
    env = python_env(base)
    env.update({"MLFLOW_TRACKING_URI": config.tracking_uri,
                "MLFLOW_TRACKING_USERNAME": config.credentials.username,
                "MLFLOW_TRACKING_PASSWORD": config.credentials.password,
                "SERVING_HOST": "127.0.0.1", "SERVING_PORT": str(config.port),
                "SERVING_MODEL_ALIAS": config.model_alias, "SERVING_POLL_SECONDS": str(config.poll_seconds)})
    # MLflow refuses both at once; what the caller's environment says is replaced
    if config.insecure_tls:
        env.pop("MLFLOW_TRACKING_SERVER_CERT_PATH", None)
        env["MLFLOW_TRACKING_INSECURE_TLS"] = "true"
    elif config.tracking_ca_file:
        env.pop("MLFLOW_TRACKING_INSECURE_TLS", None)
        env["MLFLOW_TRACKING_SERVER_CERT_PATH"] = config.tracking_ca_file
    if config.model_uri:
        env["SERVING_MODEL_URI"] = config.model_uri
    else:
        env["SERVING_MODEL_NAME"] = config.model_name
    return env
