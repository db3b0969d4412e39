"""OCI authentication and the SDK clients, the way oci-cli does it.

Options and their environment variables (option wins, then environment, then default):

    --config-file   OCI_CLI_CONFIG_FILE   ~/.oci/config
    --profile       OCI_CLI_PROFILE       DEFAULT
    --region        OCI_CLI_REGION        the profile's region (or the instance's, for principals)
    --endpoint      OCI_CLI_ENDPOINT      the region's Resource Manager endpoint
    --auth          OCI_CLI_AUTH          api_key | instance_principal | resource_principal | security_token

    >>> context = load(AuthOptions(profile="DEFAULT"))
    >>> rm = client("resource_manager", context, retry_strategy(8), context.endpoint)
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from orm_pack.errors import ExitCode, UserError

AUTH_TYPES = ("api_key", "instance_principal", "resource_principal", "security_token")
DEFAULT_CONFIG_FILE = "~/.oci/config"
DEFAULT_PROFILE = "DEFAULT"
DEFAULT_MAX_ATTEMPTS = 8  # as oci.retry.DEFAULT_RETRY_STRATEGY


@dataclass(frozen=True)
class AuthOptions:
    """What the user asked for (None = not given on the command line)."""

    config_file: str | None = None
    profile: str | None = None
    region: str | None = None
    endpoint: str | None = None
    auth: str | None = None


@dataclass(frozen=True)
class OciContext:
    """Resolved authentication: the SDK config dict, the signer, and who we are."""

    auth: str
    config: dict = field(repr=False)
    signer: Any = field(repr=False)
    region: str | None
    endpoint: str | None
    config_file: str | None
    profile: str | None
    tenancy_id: str | None
    user_id: str | None
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        """Where the credentials come from, for error messages: what the user should fix."""
        if self.auth in ("api_key", "security_token"):
            return f"profile [{self.profile}] of {self.config_file}"
        return f"{self.auth} authentication"

    def follow_flags(self) -> list[str]:
        """The command-line flags that select these credentials again (for printed follow-up commands)."""
        flags = []
        if self.auth != "api_key":
            flags += ["--auth", self.auth]
        if self.config_file and self.config_file != str(Path(DEFAULT_CONFIG_FILE).expanduser()):
            flags += ["--config-file", self.config_file]
        if self.profile and self.profile != DEFAULT_PROFILE:
            flags += ["--profile", self.profile]
        if self.endpoint:
            flags += ["--endpoint", self.endpoint]
        return flags


def resolve(options: AuthOptions, environ: Mapping[str, str] | None = None) -> AuthOptions:
    """Fill what the command line left out from OCI_CLI_* environment variables and defaults."""
    env = os.environ if environ is None else environ
    auth = options.auth or env.get("OCI_CLI_AUTH") or "api_key"
    if auth not in AUTH_TYPES:
        raise UserError(f"unknown --auth {auth!r}: use one of {', '.join(AUTH_TYPES)}", ExitCode.USAGE)
    endpoint = options.endpoint or env.get("OCI_CLI_ENDPOINT") or None
    if endpoint is not None:
        check_endpoint(endpoint)
    return AuthOptions(
        config_file=str(Path(options.config_file or env.get("OCI_CLI_CONFIG_FILE") or DEFAULT_CONFIG_FILE).expanduser()),
        profile=options.profile or env.get("OCI_CLI_PROFILE") or DEFAULT_PROFILE,
        region=options.region or env.get("OCI_CLI_REGION") or None,
        endpoint=endpoint,
        auth=auth,
    )


def check_endpoint(endpoint: str, flag: str = "--endpoint") -> None:
    """An endpoint is an http(s) URL with a host, e.g. https://resourcemanager.eu-frankfurt-1.oci.oraclecloud.com."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(endpoint)
        _ = parts.port  # raises ValueError on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or " " in endpoint:
        raise UserError(f"{flag} {endpoint!r} is not an http(s) URL: pass e.g. "
                        "https://resourcemanager.eu-frankfurt-1.oci.oraclecloud.com", ExitCode.USAGE)


def permission_warnings(paths: list[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for files that others on this machine may read or change, as oci-cli gives them: only the
    owner may read or write the OCI config and the API key (mode 600 or 400). Silenced, as in oci-cli,
    by OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING=True."""
    import stat

    env = os.environ if environ is None else environ
    if env.get("OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING", "").lower() == "true" or os.name == "nt":
        return []
    warnings = []
    for path in paths:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            continue
        if mode & 0o177:
            warnings.append(f"permissions on {path} are too open ({mode:o}): others on this machine may read it; "
                            f"fix with `chmod 600 {path}` (or set OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING=True)")
    return warnings


def _read_profile(options: AuthOptions) -> dict:
    import oci  # imported when needed: `orm-pack build` starts faster without the SDK

    path = options.config_file
    if not Path(path).is_file():
        raise UserError(
            f"OCI config file {path} not found: create it with `oci setup config`, pass --config-file "
            "(or OCI_CLI_CONFIG_FILE), or use --auth instance_principal / resource_principal",
            ExitCode.CONFIG,
        )
    try:
        config = oci.config.from_file(file_location=path, profile_name=options.profile)
        if options.auth == "api_key":
            oci.config.validate_config(config)
        return config
    except oci.exceptions.ProfileNotFound:
        raise UserError(
            f"profile [{options.profile}] is not in {path}: pass --profile (or OCI_CLI_PROFILE) with one of "
            f"{', '.join(_profiles(path)) or 'the profiles in that file'}",
            ExitCode.CONFIG,
        ) from None
    except oci.exceptions.InvalidConfig as exc:
        problems = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {"config": str(exc)}
        detail = ", ".join(f"{key} is {value}" for key, value in sorted(problems.items()))
        raise UserError(f"profile [{options.profile}] of {path} is invalid: {detail}; fix that profile",
                        ExitCode.CONFIG) from None
    except (oci.exceptions.ConfigFileNotFound, OSError) as exc:
        raise UserError(f"cannot read OCI config {path}: {exc}", ExitCode.CONFIG) from None
    except Exception as exc:  # configparser errors
        raise UserError(f"cannot parse OCI config {path}: {str(exc).splitlines()[0]}", ExitCode.CONFIG) from None


def _profiles(path: str) -> list[str]:
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error:
        return []
    return [DEFAULT_PROFILE, *parser.sections()] if parser.defaults() else parser.sections()


def _load_key(config: dict, options: AuthOptions):
    import oci  # imported when needed: `orm-pack build` starts faster without the SDK

    key_file = config.get("key_file")
    where = f"key_file of profile [{options.profile}] in {options.config_file}"
    if not key_file:
        raise UserError(f"{where} is not set", ExitCode.CONFIG)
    key_path = Path(key_file).expanduser()
    if not key_path.is_file():
        raise UserError(f"{where} points to {key_path}, which does not exist", ExitCode.CONFIG)
    try:
        return oci.signer.load_private_key_from_file(str(key_path), config.get("pass_phrase"))
    except oci.exceptions.MissingPrivateKeyPassphrase:
        raise UserError(f"{key_path} is encrypted: add pass_phrase to profile [{options.profile}] in "
                        f"{options.config_file}", ExitCode.CONFIG) from None
    except Exception:
        raise UserError(f"{key_path} ({where}) is not a readable PEM private key (or pass_phrase is wrong)",
                        ExitCode.CONFIG) from None


def load(options: AuthOptions, environ: Mapping[str, str] | None = None) -> OciContext:
    """Resolve options, read the config / obtain the principal, and build the signer.
    Raises UserError(ExitCode.CONFIG) with what to fix."""
    import oci  # imported when needed: `orm-pack build` starts faster without the SDK
    import oci.auth.signers

    options = resolve(options, environ)
    warnings: list[str] = []
    if options.auth in ("api_key", "security_token"):
        config = _read_profile(options)
        key_file = config.get("key_file")
        warnings = permission_warnings([options.config_file] + ([str(Path(key_file).expanduser())] if key_file else []),
                                       environ)
    if options.auth == "api_key":
        _load_key(config, options)  # a clear message for a missing or unreadable key
        signer = oci.signer.Signer(
            tenancy=config["tenancy"], user=config["user"], fingerprint=config["fingerprint"],
            private_key_file_location=str(Path(config["key_file"]).expanduser()),
            pass_phrase=config.get("pass_phrase"),
        )
        region = options.region or config.get("region")
        tenancy, user = config.get("tenancy"), config.get("user")
    elif options.auth == "security_token":
        token_file = config.get("security_token_file")
        if not token_file or not Path(token_file).expanduser().is_file():
            raise UserError(
                f"profile [{options.profile}] of {options.config_file} has no readable security_token_file: "
                "run `oci session authenticate` or `oci session refresh`", ExitCode.CONFIG)
        token = Path(token_file).expanduser().read_text().strip()
        signer = oci.auth.signers.SecurityTokenSigner(token, _load_key(config, options))
        region = options.region or config.get("region")
        tenancy, user = config.get("tenancy"), None
    else:
        try:
            if options.auth == "instance_principal":
                signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
            else:
                signer = oci.auth.signers.get_resource_principals_signer()
        except Exception as exc:
            raise UserError(
                f"{options.auth} authentication failed ({type(exc).__name__}): it works only on an OCI instance "
                "(or function/job) with a dynamic group and policies; elsewhere use --auth api_key",
                ExitCode.CONFIG,
            ) from None
        config = {}
        region = options.region or getattr(signer, "region", None)
        tenancy, user = getattr(signer, "tenancy_id", None), None
    if not region and not options.endpoint:
        raise UserError(f"no region: set region in profile [{options.profile}] of {options.config_file}, "
                        "or pass --region (or OCI_CLI_REGION)", ExitCode.CONFIG)
    if region:
        config = {**config, "region": region}
    return OciContext(
        auth=options.auth, config=config, signer=signer, region=region, endpoint=options.endpoint,
        config_file=options.config_file if options.auth in ("api_key", "security_token") else None,
        profile=options.profile if options.auth in ("api_key", "security_token") else None,
        tenancy_id=tenancy, user_id=user, warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class RetryNotice:
    """A call failed for a reason worth retrying; the next attempt comes after `seconds`."""

    next_attempt: int
    max_attempts: int
    seconds: float
    reason: str           # "did not answer" or "answered 503 ServiceUnavailable"

    def message(self, service: str = "Resource Manager") -> str:
        return (f"{service} {self.reason}; attempt {self.next_attempt} of {self.max_attempts} "
                f"in {self.seconds:.0f} s")


def _retry_reason(exception) -> str:
    status = getattr(exception, "status", None)
    if isinstance(status, int):
        return f"answered {status} {getattr(exception, 'code', None) or ''}".rstrip()
    return "did not answer"


def retry_strategy(max_attempts: int = DEFAULT_MAX_ATTEMPTS, on_retry: Callable[[RetryNotice], None] | None = None):
    """The SDK's retry strategy for transient errors (429, 5xx, 409 IncorrectState, timeouts, refused
    connections); max_attempts <= 1 turns retries off. `on_retry` hears of each retry before its wait, so
    the user is not left in silence while the SDK backs off."""
    import time

    import oci  # imported when needed: `orm-pack build` starts faster without the SDK
    from oci.retry import retry_sleep_utils
    from oci.retry.retry import ExponentialBackOffWithDecorrelatedJitterRetryStrategy

    if max_attempts <= 1:
        return oci.retry.NoneRetryStrategy()
    built = oci.retry.RetryStrategyBuilder(
        max_attempts_check=True, max_attempts=max_attempts,
        total_elapsed_time_check=True, total_elapsed_time_seconds=600,
        retry_max_wait_between_calls_seconds=30, retry_base_sleep_time_seconds=1,
        service_error_check=True, backoff_type=oci.retry.BACKOFF_DECORRELATED_JITTER_VALUE,
    ).get_retry_strategy()
    if on_retry is None:
        return built

    class ReportingRetryStrategy(ExponentialBackOffWithDecorrelatedJitterRetryStrategy):
        def do_sleep(self, attempt, exception):
            seconds = retry_sleep_utils.get_exponential_backoff_with_decorrelated_jitter_sleep_time(
                self.base_sleep_time_seconds, self.exponent_growth_factor, self.max_wait_between_calls_seconds,
                attempt, self.decorrelated_jitter)
            on_retry(RetryNotice(attempt + 1, max_attempts, seconds, _retry_reason(exception)))
            time.sleep(seconds)

    return ReportingRetryStrategy(built.base_sleep_time_seconds, built.exponent_growth_factor,
                                  built.max_wait_between_calls_seconds, built.checkers,
                                  decorrelated_jitter=built.decorrelated_jitter)


def network_errors() -> tuple[type[BaseException], ...]:
    """What the SDK raises when an endpoint cannot be reached: its vendored requests' errors, its own, the socket's."""
    import oci
    from oci._vendor.requests.exceptions import RequestException

    return (RequestException, oci.exceptions.RequestException, oci.exceptions.ConnectTimeout, ConnectionError)


# service -> (SDK module, client class, the flag that overrides its endpoint)
CLIENTS = {
    "resource_manager": ("resource_manager", "ResourceManagerClient", "--endpoint"),
    "object_storage": ("object_storage", "ObjectStorageClient", "--object-storage-endpoint"),
    "container_engine": ("container_engine", "ContainerEngineClient", "--container-engine-endpoint"),
    "secrets": ("secrets", "SecretsClient", "--secrets-endpoint"),
    "certificates": ("certificates", "CertificatesClient", "--certificates-endpoint"),
    "mysql_backups": ("mysql", "DbBackupsClient", "--mysql-endpoint"),
    "mysql_db_systems": ("mysql", "DbSystemClient", "--mysql-endpoint"),
    "run_command": ("compute_instance_agent", "ComputeInstanceAgentClient", "--compute-agent-endpoint"),
    "monitoring": ("monitoring", "MonitoringClient", "--monitoring-endpoint"),
    "management_dashboard": ("management_dashboard", "DashxApisClient", "--management-dashboard-endpoint"),
}


def client(service: str, context: OciContext, strategy=None, endpoint: str | None = None, timeout=(10, 120)):
    """The SDK client of `service` (a key of CLIENTS) for `context`: its signer, region and retries, the
    region's endpoint unless `endpoint` overrides it. The one place the package makes an OCI client."""
    import importlib

    import oci  # imported when needed: `orm-pack build` starts faster without the SDK

    module, class_name, flag = CLIENTS[service]
    kwargs: dict[str, Any] = {"signer": context.signer, "timeout": timeout,
                              "retry_strategy": strategy if strategy is not None else retry_strategy()}
    if endpoint:
        check_endpoint(endpoint, flag)
        kwargs["service_endpoint"] = endpoint
    config = dict(context.config)
    config.setdefault("region", context.region or "us-ashburn-1")
    try:
        return getattr(importlib.import_module(f"oci.{module}"), class_name)(config, **kwargs)
    except oci.exceptions.InvalidConfig as exc:
        raise UserError(f"{context.describe()} is invalid: {exc}", ExitCode.CONFIG) from None
