"""Who the runtime is to OCI, and the SDK clients it uses.

MLFLOW_OCI_AUTH selects the identity:
  instance_principal (default)  the VM's own identity: a certificate from the instance metadata
                                service, exchanged for short-lived tokens; no key is stored anywhere
  api_key                       ~/.oci/config (OCI_CONFIG_FILE, OCI_CONFIG_PROFILE), for a laptop
Endpoints may be overridden (private endpoints, other realms) with MLFLOW_OCI_FEDERATION_ENDPOINT,
MLFLOW_OCI_OBJECT_STORAGE_ENDPOINT, MLFLOW_OCI_SECRETS_ENDPOINT, MLFLOW_OCI_CERTIFICATES_ENDPOINT and
MLFLOW_OCI_LOGGING_ENDPOINT (Logging ingestion) and MLFLOW_OCI_MONITORING_ENDPOINT (telemetry ingestion); the
instance metadata service with the SDK's own OCI_METADATA_BASE_URL.
"""
import os
import threading

_lock = threading.Lock()
_identity = None


class AuthError(Exception):
    """The runtime could not establish its OCI identity; the message says what to check."""


def _instance_principal():
    import oci

    federation = os.environ.get("MLFLOW_OCI_FEDERATION_ENDPOINT") or None
    try:
        signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner(
            federation_endpoint=federation, retry_strategy=oci.retry.NoneRetryStrategy())
    except Exception as exc:  # the SDK raises requests', its own and socket errors here
        raise AuthError(
            f"the instance principal is not available ({type(exc).__name__}: {first_line(exc)}); "
            "this runs on an OCI instance with the metadata service reachable, or set MLFLOW_OCI_AUTH=api_key"
        ) from exc
    return {"region": signer.region}, signer


def _api_key():
    import oci

    path = os.environ.get("OCI_CONFIG_FILE", oci.config.DEFAULT_LOCATION)
    profile = os.environ.get("OCI_CONFIG_PROFILE", oci.config.DEFAULT_PROFILE)
    try:
        config = oci.config.from_file(path, profile)
    except Exception as exc:
        raise AuthError(f"cannot use the API key of profile {profile} in {path}: {first_line(exc)}") from exc
    return config, oci.signer.Signer.from_config(config)


def identity():
    """(config, signer), made once per process and shared by every client (the signer refreshes its
    token itself)."""
    global _identity
    with _lock:
        if _identity is None:
            mode = os.environ.get("MLFLOW_OCI_AUTH", "instance_principal")
            makers = {"instance_principal": _instance_principal, "api_key": _api_key}
            if mode not in makers:
                raise AuthError(f"MLFLOW_OCI_AUTH must be instance_principal or api_key (got {mode!r})")
            _identity = makers[mode]()
        return _identity


def _client(client_class, endpoint_variable: str):
    import oci

    config, signer = identity()
    kwargs = {"signer": signer, "retry_strategy": oci.retry.DEFAULT_RETRY_STRATEGY}
    if os.environ.get(endpoint_variable):
        kwargs["service_endpoint"] = os.environ[endpoint_variable]
    return client_class(config, **kwargs)


def object_storage_client():
    import oci

    return _client(oci.object_storage.ObjectStorageClient, "MLFLOW_OCI_OBJECT_STORAGE_ENDPOINT")


def secrets_client():
    import oci

    return _client(oci.secrets.SecretsClient, "MLFLOW_OCI_SECRETS_ENDPOINT")


def certificates_client():
    import oci

    return _client(oci.certificates.CertificatesClient, "MLFLOW_OCI_CERTIFICATES_ENDPOINT")


def logging_client():
    import oci

    return _client(oci.loggingingestion.LoggingClient, "MLFLOW_OCI_LOGGING_ENDPOINT")


def monitoring_client():
    """For PostMetricData, whose endpoint is telemetry-ingestion.<region>, not the SDK's default telemetry.<region>."""
    import oci

    client = _client(oci.monitoring.MonitoringClient, "MLFLOW_OCI_MONITORING_ENDPOINT")
    if not os.environ.get("MLFLOW_OCI_MONITORING_ENDPOINT"):
        client.base_client.endpoint = client.base_client.endpoint.replace("://telemetry.", "://telemetry-ingestion.")
    return client


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
