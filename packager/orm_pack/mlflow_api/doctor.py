"""`orm-pack doctor`: does a deployment really work, end to end, as its users will use it?

Each check is one line, passed or failed with what to do. The checks write a little (an experiment
and a run named orm-pack-doctor-…, a test artifact) and delete it again.

    checks = run(DoctorTarget("https://203.0.113.10", "mlflow", password, serving_url=...))
    all(check.passed for check in checks)

Only the standard library: the doctor runs from a clean `pip install` of orm-pack.
"""
from __future__ import annotations

import hashlib
import ipaddress
import time
from dataclasses import dataclass
from urllib.parse import quote

from orm_pack.mlflow_api import http_client, tls

ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
MLFLOW_API = "/api/2.0/mlflow"
MODEL_HEADER = "X-MLflow-Model-URI"
# What browsers are taken to call a server reached on a loopback address: MLflow lets any localhost
# origin write, so only another name shows whether a page's own writes get through.
LOOPBACK_BROWSER_HOST = "orm-pack-doctor.test"
FOREIGN_ORIGIN = "https://orm-pack-doctor.invalid"


@dataclass(frozen=True)
class DoctorTarget:
    tracking_url: str
    username: str
    password: str
    serving_url: str | None = None
    model_name: str = "wine-quality"
    alias: str = "champion"
    browser_host: str | None = None   # the name browsers reach the tracking server by, when not the URL's
    ca_file: str | None = None        # the CA to verify with; None: the system's trusted CAs
    verify_tls: bool = True           # False: --insecure, nothing verified
    artifact_mb: int = 50
    timeout: float = 120
    mlflow_version: str | None = None  # the version the stack sets; None: the version check is not run


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    fix: str = ""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


# ------------------------------------------------------------------ the checks
def check_tls(endpoint: http_client.Endpoint) -> Check:
    """The TLS version, and that the certificate verifies with the endpoint's CA (its CA file, else the system's
    trusted CAs) for the URL's address; passes with a warning within tls.WARN_DAYS of its expiry."""
    if endpoint.scheme != "https":
        return Check("tls", False, f"{endpoint.url} is plain HTTP", "use the https:// URL the stack prints")
    try:
        shown = tls.presented(endpoint.host, endpoint.port, endpoint.timeout)
    except OSError as exc:
        return Check("tls", False, f"no TLS connection to {endpoint.authority}: {exc}",
                     "a new VM needs 10-15 minutes after apply; check that your address is inside "
                     "allowed_ingress_cidr and that the VM runs (orm-pack status)")
    if shown.version not in ("TLSv1.2", "TLSv1.3"):
        return Check("tls", False, f"{shown.version} {shown.cipher}", "the proxy must offer TLS 1.2 or 1.3 only")
    if not endpoint.verify_tls:
        return Check("tls", True, f"{shown.version} {shown.cipher}, certificate NOT verified (--insecure)")
    try:
        problem = tls.verify(endpoint.host, endpoint.port, endpoint.context, endpoint.timeout, endpoint.ca_file, shown)
    except OSError as exc:
        return Check("tls", False, f"no verified TLS connection to {endpoint.authority}: {exc}",
                     f"check the server and {tls.trust_source(endpoint.ca_file)}")
    if problem:
        return Check("tls", False, problem.detail, problem.fix)
    detail = f"{shown.version} {shown.cipher}, certificate verified with {tls.trust_source(endpoint.ca_file)}"
    info = shown.certificate
    if info is None:
        return Check("tls", True, detail)
    days = info.days_left()
    if days < tls.WARN_DAYS:
        return Check("tls", True, f"{detail}; WARNING: it expires in {max(int(days), 0)} days "
                     f"({info.not_after:%Y-%m-%d}): renew it before then")
    return Check("tls", True, f"{detail} (for {info.names()}; until {info.not_after:%Y-%m-%d})")


def check_health(endpoint: http_client.Endpoint) -> Check:
    answer = endpoint.request("GET", "/health", auth=False)
    if answer.status == 200:
        return Check("health", True, "GET /health answers 200 without a password")
    return Check("health", False, f"GET /health answered {answer.status}: {answer.text()}",
                 "the server behind the proxy is not up: see the service's journal (commands.txt says where)")


def served_version(endpoint: http_client.Endpoint) -> str:
    """The MLflow version the server reports (MLflow's GET /version, logged in); "? (STATUS)" when it does not
    answer 200."""
    answer = endpoint.request("GET", "/version", auth=True)
    return answer.body.decode(errors="replace").strip() if answer.status == 200 else f"? ({answer.status})"


def check_version(endpoint: http_client.Endpoint, expected: str) -> Check:
    """The MLflow version the server runs is the one the stack sets. It is not when the tracking VM refused the
    upgrade at boot (userdata/mlflow-bootstrap.sh) and runs the version that last served the database."""
    served = served_version(endpoint)
    if served == expected:
        return Check("version", True, f"the server runs MLflow {served}, as the stack sets")
    if served.startswith("?"):
        return Check("version", False, f"GET /version answered {served}: no MLflow version to compare with "
                     f"{expected}", "see the auth line (the version is read logged in) and the tracking server's log")
    return Check("version", False, f"the server runs MLflow {served}, the stack sets {expected}",
                 "the tracking VM refused the upgrade at boot (its pre-checks found a problem in the database) and "
                 "runs the version that last served it: `orm-pack upgrade --status --compartment <compartment "
                 "OCID>` prints why and the SQL that fixes it; fix it and apply again, or run `orm-pack upgrade`")


def check_auth(endpoint: http_client.Endpoint) -> Check:
    path = f"{MLFLOW_API}/experiments/search?max_results=1"
    anonymous = endpoint.request("GET", path, auth=False)
    if anonymous.status != 401:
        return Check("auth", False, f"without a password the API answered {anonymous.status}, not 401",
                     "the auth proxy is not in front of MLflow: nobody may reach MLflow but through it")
    logged_in = endpoint.request("GET", path)
    if logged_in.status == 429:
        return Check("auth", False, "too many failed logins from this address (429)", "wait a minute and retry")
    if logged_in.status != 200:
        return Check("auth", False, f"with the login the API answered {logged_in.status}: {logged_in.text()}",
                     "check the user name and MLFLOW_TRACKING_PASSWORD (the stack's output mlflow_password_command "
                     "prints it)")
    return Check("auth", True, "401 without the login, 200 with it")


class Scratch:
    """The experiment and run the checks write to, deleted at the end."""

    def __init__(self, endpoint: http_client.Endpoint):
        self.endpoint = endpoint
        self.experiments: list[str] = []

    def created(self, answer: http_client.Answer) -> str | None:
        experiment = answer.json().get("experiment_id") if answer.status == 200 else None
        if experiment:
            self.experiments.append(experiment)
        return experiment

    def clean(self) -> None:
        for experiment in self.experiments:
            self.endpoint.request("POST", f"{MLFLOW_API}/experiments/delete", {"experiment_id": experiment})


def check_same_origin_write(endpoint: http_client.Endpoint, scratch: Scratch, browser_host: str) -> Check:
    authority = browser_host if endpoint.port == 443 else f"{browser_host}:{endpoint.port}"
    answer = endpoint.request("POST", f"{MLFLOW_API}/experiments/create",
                              {"name": f"orm-pack-doctor-{time.time_ns()}"},
                              headers={"Host": authority, "Origin": f"https://{authority}"})
    if scratch.created(answer):
        return Check("ui-write", True, f"a write from the page's own origin (https://{authority}) is accepted")
    if "Cross-origin request blocked" in answer.text():
        return Check("ui-write", False, f"a write from the page's own origin (https://{authority}) was refused "
                     f"({answer.status} Cross-origin request blocked): the UI cannot save anything",
                     "the auth proxy must drop Origin on same-origin requests: redeploy with the current "
                     "docker/nginx/mlflow-proxy.conf.template")
    return Check("ui-write", False, f"creating an experiment as the UI does answered {answer.status}: "
                 f"{answer.text()}", "see the tracking server's log (commands.txt says where)")


def check_cross_origin_write(endpoint: http_client.Endpoint, scratch: Scratch) -> Check:
    answer = endpoint.request("POST", f"{MLFLOW_API}/experiments/create",
                              {"name": f"orm-pack-doctor-foreign-{time.time_ns()}"},
                              headers={"Origin": FOREIGN_ORIGIN})
    if scratch.created(answer):
        return Check("cross-origin", False, f"a write from another site ({FOREIGN_ORIGIN}) was accepted",
                     "any web page could change MLflow with a logged-in user's browser: never configure "
                     "allowed origins as *, and keep the proxy's origin check")
    if answer.status == 403:
        return Check("cross-origin", True, f"a write from another site ({FOREIGN_ORIGIN}) is refused (403)")
    return Check("cross-origin", False, f"a write from another site answered {answer.status}: {answer.text()}",
                 "the proxy should refuse it with 403")


class _PatternStream:
    """`size` bytes of a repeatable pattern, read in pieces; hashes what it hands out."""

    def __init__(self, size: int):
        self.size, self.sent, self.digest = size, 0, hashlib.sha256()
        self.block = hashlib.sha512(b"orm-pack-doctor").digest() * 16384  # 1 MiB

    def __len__(self):
        return self.size

    def read(self, amount: int = -1) -> bytes:
        left = self.size - self.sent
        amount = left if amount is None or amount < 0 else min(amount, left)
        offset = self.sent % len(self.block)
        piece = self.block[offset:offset + amount]  # a short read at the pattern's end is fine
        self.sent += len(piece)
        self.digest.update(piece)
        return piece


def check_artifacts(endpoint: http_client.Endpoint, scratch: Scratch, megabytes: int) -> Check:
    experiment = scratch.created(endpoint.request("POST", f"{MLFLOW_API}/experiments/create",
                                                  {"name": f"orm-pack-doctor-artifacts-{time.time_ns()}"}))
    if not experiment:
        return Check("artifacts", False, "could not create an experiment to upload to", "see the checks above")
    run = endpoint.request("POST", f"{MLFLOW_API}/runs/create", {"experiment_id": experiment})
    run_id = run.json().get("run", {}).get("info", {}).get("run_id")
    if not run_id:
        return Check("artifacts", False, f"could not create a run ({run.status}: {run.text()})",
                     "see the tracking server's log")
    path = f"{ARTIFACTS_API}/{experiment}/{run_id}/artifacts/orm-pack-doctor.bin"
    stream = _PatternStream(megabytes * 1024 * 1024)
    started = time.monotonic()
    upload = endpoint.request("PUT", path, body=stream, headers={"Content-Type": "application/octet-stream",
                                                                  "Content-Length": str(len(stream))})
    up_seconds = time.monotonic() - started
    if upload.status != 200:
        return Check("artifacts", False, f"uploading {megabytes} MB answered {upload.status}: {upload.text()}",
                     "the artifact store behind the tracking server refused it: see its log (bucket, credentials)")
    started = time.monotonic()
    connection = endpoint.connection()
    received, digest = 0, hashlib.sha256()
    try:
        connection.request("GET", path, headers={"Host": endpoint.authority, "Authorization": endpoint.authorization})
        response = connection.getresponse()
        while chunk := response.read(1024 * 1024):
            received += len(chunk)
            digest.update(chunk)
        status = response.status
    finally:
        connection.close()
    down_seconds = time.monotonic() - started
    endpoint.request("DELETE", path)
    if status != 200 or digest.digest() != stream.digest.digest():
        return Check("artifacts", False, f"{megabytes} MB went up but came back {status} with {received} bytes "
                     "that differ", "see the tracking server's log")
    return Check("artifacts", True, f"{megabytes} MB up in {up_seconds:.1f} s and back in {down_seconds:.1f} s, "
                 "identical")


def _alias_version(endpoint: http_client.Endpoint, target: DoctorTarget) -> tuple[str | None, Check]:
    path = (f"{MLFLOW_API}/registered-models/alias?name={quote(target.model_name)}&alias={quote(target.alias)}")
    answer = endpoint.request("GET", path)
    version = answer.json().get("model_version", {}).get("version") if answer.status == 200 else None
    if version:
        return version, Check("alias", True, f"{target.model_name}@{target.alias} is version {version}")
    return None, Check("alias", False, f"no version of {target.model_name} carries the alias {target.alias}",
                       f"register a model as {target.model_name} (examples/wine/train.py) and set the alias "
                       f"{target.alias} on a version in the MLflow UI")


def check_serving(serving: http_client.Endpoint, target: DoctorTarget, version: str | None) -> Check:
    answer = serving.request("GET", "/ping")
    served = answer.headers.get(MODEL_HEADER)
    if answer.status == 503 or not served:
        return Check("serving", False, f"the endpoint serves no model yet ({answer.status}: {answer.text()})",
                     f"it serves {target.model_name}@{target.alias} once that alias exists, within "
                     "SERVING_POLL_SECONDS")
    expected = f"models:/{target.model_name}/{version}" if version else None
    if expected and served != expected:
        return Check("serving", False, f"the endpoint serves {served}, the alias points at {expected}",
                     "it follows the alias within SERVING_POLL_SECONDS; if this lasts, see the serving log")
    return Check("serving", True, f"answers with {served}" + (" (the alias's version)" if expected else ""))


def run(target: DoctorTarget) -> list[Check]:
    tracking = http_client.Endpoint(target.tracking_url, target.username, target.password, target.timeout,
                                    verify_tls=target.verify_tls, ca_file=target.ca_file)
    checks = [check_tls(tracking)]
    if not checks[0].passed and tracking.scheme == "https":  # no TLS, or a certificate the others would refuse too
        return checks
    checks.append(check_health(tracking))
    if target.mlflow_version:
        checks.append(check_version(tracking, target.mlflow_version))
    checks.append(check_auth(tracking))
    if not checks[-1].passed:
        return checks
    browser_host = target.browser_host or (LOOPBACK_BROWSER_HOST if _is_loopback(tracking.host) else tracking.host)
    scratch = Scratch(tracking)
    try:
        checks += [check_same_origin_write(tracking, scratch, browser_host), check_cross_origin_write(tracking, scratch),
                   check_artifacts(tracking, scratch, target.artifact_mb)]
    finally:
        scratch.clean()
    version, alias_check = _alias_version(tracking, target)
    checks.append(alias_check)
    if target.serving_url:
        serving = http_client.Endpoint(target.serving_url, target.username, target.password, target.timeout,
                                       verify_tls=target.verify_tls, ca_file=target.ca_file)
        try:
            checks.append(check_serving(serving, target, version))
        except OSError as exc:
            checks.append(Check("serving", False, f"no answer from {target.serving_url}: {exc}",
                                "is the serving VM up and your address inside allowed_ingress_cidr?"))
    return checks
