"""A served model's code finds no credential: the serving supervisor downloads the version itself, with
the registry login, and the model server serves that local copy with a clean environment; started as root
(the serving VM's container), the supervisor also runs the model server as another user than its own, and
the VM bars that user from the instance metadata service (docker/serving/model-egress.sh). Driven as an
attacker would: a registered model whose predict() returns everything it can see and reach (environment,
working directory, its ancestors' command lines and environments, the supervisor's process and files),
served by the real supervisor with a real login, asked over HTTP; and the VM's own nftables script applied
in a network namespace of the test's, with the metadata address on its loopback.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from dataplane.stacks import CLIENT_ENV, REPO_ROOT, RUNTIME
from harness.other_users import runnable_by_others
from harness.tools import missing, require_binary
from orm_pack.local import processes
from orm_pack.local.ports import free_port
from orm_pack.local.services import ServingConfig, serving_argv, serving_env

pytestmark = pytest.mark.dataplane

HUNTER = '''
import json, os
import mlflow
from mlflow.pyfunc import PythonModel


def attempt(action):
    try:
        return f"ok: {action()!r}"[:200]
    except OSError as exc:
        return type(exc).__name__


def read(path):
    with open(path, "rb") as f:
        return f.read()


class CredentialHunter(PythonModel):
    def predict(self, context, model_input, params=None):
        cache = os.path.join(os.environ["HOME"], ".cache", "hunter")  # what a library leaves in HOME
        os.makedirs(cache, exist_ok=True)
        with open(os.path.join(cache, "left-behind"), "w") as f:
            f.write("x")
        os.chmod(cache, 0o700)
        chain, pids, pid = [], [], os.getpid()
        for _ in range(6):  # this process and its ancestors, as far as they can be read
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    chain.append([part.decode() for part in f.read().split(b"\\0") if part])
                pids.append(pid)
                with open(f"/proc/{pid}/stat") as f:
                    pid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                break
        with open("/proc/self/status") as f:
            status = dict(line.rstrip("\\n").split(":\\t", 1) for line in f if ":\\t" in line)
        found = {"env": dict(os.environ), "cwd": os.getcwd(), "chain": chain, "pids": pids,
                 "ids": {"uid": os.getresuid(), "gid": os.getresgid(), "groups": os.getgroups(),
                         "no_new_privs": status.get("NoNewPrivs"), "caps": status.get("CapEff")},
                 "environ": {p: attempt(lambda p=p: read(f"/proc/{p}/environ")) for p in pids[1:]}}
        found["listing"] = {path: attempt(lambda path=path: os.listdir(path))
                            for path in (os.path.dirname(os.getcwd()), os.path.dirname(os.path.dirname(os.getcwd())))}
        if hasattr(model_input, "columns") and "pid" in model_input.columns:  # what the test points at
            target, path = int(model_input["pid"][0]), str(model_input["path"][0])
            found["target"] = {"environ": attempt(lambda: read(f"/proc/{target}/environ")),
                               "mem": attempt(lambda: read(f"/proc/{target}/mem")),
                               "signal": attempt(lambda: os.kill(target, 0)),
                               "file": attempt(lambda: read(path))}
        return [json.dumps(found)]


mlflow.models.set_model(CredentialHunter())
'''

REGISTER = '''
import sys, mlflow
with mlflow.start_run():
    info = mlflow.pyfunc.log_model(name="model", python_model=sys.argv[1], registered_model_name=sys.argv[2])
print(info.registered_model_version)
'''
SENSITIVE = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OCI_RESOURCE_PRINCIPAL_VERSION")


@pytest.fixture(scope="module")
def hunter_uri(tracking_stack, tmp_path_factory) -> str:
    workdir = tmp_path_factory.mktemp("hunter")
    (workdir / "hunter.py").write_text(HUNTER)
    result = subprocess.run([sys.executable, "-c", REGISTER, str(workdir / "hunter.py"), "credential-hunter"],
                            env=tracking_stack.client_env(), cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return f"models:/credential-hunter/{result.stdout.split()[-1]}"


def test_a_served_models_code_finds_no_login_uri_or_secret(tracker, tracking_stack, hunter_uri, tmp_path):
    port = free_port()
    env = serving_env(ServingConfig(port=port, tracking_uri=tracking_stack.url, credentials=tracking_stack.login,
                                    model_uri=hunter_uri, poll_seconds=1))
    env.update(CLIENT_ENV, AWS_SECRET_ACCESS_KEY="a-key-the-supervisor-holds", SERVING_MODELS_DIR=str(tmp_path / "models"))
    log = tmp_path / "supervisor.log"
    supervisor = tracker.start("hunter-serving", serving_argv(RUNTIME), env, log)
    try:
        processes.wait_ready(supervisor, f"http://127.0.0.1:{port}/health", 240, accept=(200,))
        answer = requests.post(f"http://127.0.0.1:{port}/invocations", json={"inputs": [[0]]}, timeout=60)
        assert answer.status_code == 200, answer.text
        found = json.loads(answer.json()["predictions"][0])
    finally:
        tracker.remember_tree(supervisor)
        tracker.stop(supervisor)
    assert set(SENSITIVE) & set(found["env"]) == set(), sorted(found["env"])
    secrets = (tracking_stack.login.password, "a-key-the-supervisor-holds")
    assert not [name for name, value in found["env"].items() if any(secret in value for secret in secrets)]
    assert set(found["env"]) <= {"PATH", "HOME", "PYTHONUNBUFFERED", "LANG", "LC_ALL", "TZ"} | _set_by_mlflow(found)
    # the model server was given the downloaded copy, not the registry URI it would fetch with a login
    serve = next(argv for argv in found["chain"] if "serve" in argv and "-m" in argv)
    served = Path(serve[serve.index("-m", serve.index("serve")) + 1])
    assert served.is_relative_to(tmp_path / "models") and not str(served).startswith("models:/")
    assert Path(found["cwd"]).is_relative_to(tmp_path / "models")
    time.sleep(0.5)  # the supervisor removes the copy when it stops its model server
    assert list((tmp_path / "models").iterdir()) == []


def _set_by_mlflow(found: dict) -> set:
    """What `mlflow models serve` adds for its workers: the shell it starts them through (SHLVL, PWD, _),
    the model's path and its own settings (__pyfunc_model_path__, _MLFLOW_*, MLFLOW_SCORING_*); names only,
    their values are checked above."""
    return {name for name in found["env"]
            if name in ("SHLVL", "PWD", "OLDPWD", "_") or name.startswith(("__pyfunc", "_MLFLOW_", "MLFLOW_SCORING_"))}


# The image's users (Dockerfile-serving): the supervisor's and the model server's.
DOCKERFILE = (REPO_ROOT / "docker" / "Dockerfile-serving").read_text()
USERS = {name: int(uid) for uid, name in re.findall(r"useradd [^\n]*--uid (\d+) [^\n]* (\w+)(?: \\)?$", DOCKERFILE, re.M)}
SUPERVISOR_UID, MODEL_UID = USERS["mlflow"], USERS["mlmodel"]
MODEL_EGRESS = REPO_ROOT / "docker" / "serving" / "model-egress.sh"


def _as_root(what: str) -> None:
    if os.geteuid() != 0:
        missing(f"root ({what})", "run the tests as root, as CI does")


@pytest.fixture
def shared_dir():
    """A directory both users may pass through (pytest's own directories are root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="serving-users-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _runs_as_other_users() -> None:
    """Both users run this interpreter and import from it: the command lines below run in a mount namespace
    where a closed directory on the way (a 0700 /root holding the interpreter) lets them pass."""
    probe = runnable_by_others(["setpriv", f"--reuid={SUPERVISOR_UID}", f"--regid={SUPERVISOR_UID}", "--clear-groups",
                                sys.executable, "-c", "import encodings.idna, mlflow.pyfunc"], REPO_ROOT, RUNTIME.root)
    try:
        subprocess.run(probe, cwd="/", check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.CalledProcessError) as exc:
        missing(f"a Python other users may run ({sys.executable}: {getattr(exc, 'stderr', b'')[-300:] or exc})",
                "util-linux's unshare and setpriv, as root")


def _ids(pid: int) -> dict:
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)
    return {"uid": [int(n) for n in status["Uid"].split()], "gid": [int(n) for n in status["Gid"].split()],
            "groups": status["Groups"].split()}


def test_the_model_server_runs_as_another_user_than_the_supervisor(tracker, tracking_stack, hunter_uri, shared_dir,
                                                                   tmp_path):
    """As root with the image's two users (the serving VM's container): the supervisor becomes its user before
    it reads a secret, and the model's code, as the other user, can neither read the supervisor's (nor the
    root launcher's) environment or memory, nor signal it, nor open its 0600 file, nor list other copies."""
    _as_root("the supervisor starts the model server as another user")
    _runs_as_other_users()
    secret_file = shared_dir / "supervisor-only"
    secret_file.write_text("what only the supervisor's user may read\n")
    os.chown(secret_file, SUPERVISOR_UID, SUPERVISOR_UID)
    secret_file.chmod(0o600)
    (shared_dir / "models").mkdir(mode=0o700)  # the supervisor's, as /tmp/mlflow-served-models in the image
    os.chown(shared_dir / "models", SUPERVISOR_UID, SUPERVISOR_UID)
    port = free_port()
    env = serving_env(ServingConfig(port=port, tracking_uri=tracking_stack.url, credentials=tracking_stack.login,
                                    model_uri=hunter_uri, poll_seconds=1))
    env.update(CLIENT_ENV, AWS_SECRET_ACCESS_KEY="a-key-the-supervisor-holds", SERVING_MODELS_DIR=str(shared_dir / "models"),
               SERVING_SUPERVISOR_USER=str(SUPERVISOR_UID), SERVING_MODEL_USER=str(MODEL_UID))
    log = tmp_path / "supervisor.log"
    supervisor = tracker.start("separated-serving", runnable_by_others(serving_argv(RUNTIME), REPO_ROOT, RUNTIME.root), env, log)
    try:
        processes.wait_ready(supervisor, f"http://127.0.0.1:{port}/health", 240, accept=(200,))
        answer = requests.post(f"http://127.0.0.1:{port}/invocations", timeout=60,
                               json={"dataframe_records": [{"pid": supervisor.pid, "path": str(secret_file)}]})
        assert answer.status_code == 200, answer.text
        found = json.loads(answer.json()["predictions"][0])
        supervisor_ids = _ids(supervisor.pid)
        # what the hunt is after is there: root reads the login in the supervisor's environment
        assert tracking_stack.login.password.encode() in Path(f"/proc/{supervisor.pid}/environ").read_bytes()
    finally:
        tracker.remember_tree(supervisor)
        tracker.stop(supervisor)
    # the supervisor is its own user for good: real, effective, saved and file ids, no supplementary group
    assert supervisor_ids == {"uid": [SUPERVISOR_UID] * 4, "gid": [SUPERVISOR_UID] * 4, "groups": []}
    # the model's code: the other user, no group, no capability, and no setuid program gives any back
    assert found["ids"] == {"uid": [MODEL_UID] * 3, "gid": [MODEL_UID] * 3, "groups": [],
                            "no_new_privs": "1", "caps": "0000000000000000"}
    assert found["target"] == {"environ": "PermissionError", "mem": "PermissionError", "signal": "PermissionError",
                               "file": "PermissionError"}
    # its ancestors: its own model server processes, then the root launcher and the supervisor
    privileged = [pid for pid, argv in zip(found["pids"], found["chain"], strict=True) if any("supervisor.py" in a for a in argv)]
    assert supervisor.pid in privileged and len(privileged) == 2, found["chain"]
    assert {found["environ"][str(pid)] for pid in privileged} == {"PermissionError"}
    # it reaches its own copy, but cannot list the supervisor's directories
    assert set(found["listing"].values()) == {"PermissionError"}
    # and its environment is as clean as without the second user
    assert set(SENSITIVE) & set(found["env"]) == set(), sorted(found["env"])
    assert set(found["env"]) <= {"PATH", "HOME", "PYTHONUNBUFFERED", "LANG", "LC_ALL", "TZ"} | _set_by_mlflow(found)
    assert Path(found["cwd"]).is_relative_to(shared_dir / "models")
    text = log.read_text()
    assert re.search(rf"model servers run as \S+ \(uid {MODEL_UID}\), this supervisor as \S+ \(uid {SUPERVISOR_UID}\)",
                     text), text
    time.sleep(0.5)  # the copy and what the model wrote into its HOME (its user's) go with its model server
    assert list((shared_dir / "models").iterdir()) == []


# Run inside a network namespace of its own (unshare -n): the metadata addresses on its loopback, a listener
# on each, the VM's script applied (twice: it replaces its table), then a connection from each user.
NETNS_PROBE = r'''
import json, os, socket, subprocess, sys, threading
script, uids = sys.argv[1], [int(u) for u in sys.argv[2:]]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"], check=True)
subprocess.run(["ip", "-6", "addr", "add", "fd00:c1::a9fe:a9fe/128", "dev", "lo", "nodad"], check=True)
for _ in range(2):
    subprocess.run(["bash", script], check=True)
listeners = []
for family, host, port in ((socket.AF_INET, "169.254.169.254", 80), (socket.AF_INET, "169.254.169.254", 53),
                           (socket.AF_INET6, "fd00:c1::a9fe:a9fe", 80), (socket.AF_INET, "127.0.0.1", 8080)):
    listener = socket.socket(family)
    listener.bind((host, port))
    listener.listen(64)
    listeners.append(listener)
    threading.Thread(target=lambda s=listener: [s.accept()[0].close() for _ in iter(int, 1)], daemon=True).start()


def probe():
    out = {}
    for listener in listeners:
        host, port = listener.getsockname()[:2]
        client = socket.socket(listener.family)
        client.settimeout(3)
        try:
            client.connect((host, port))
            out[f"tcp {host} {port}"] = "connected"
        except OSError as exc:
            out[f"tcp {host} {port}"] = type(exc).__name__
        finally:
            client.close()
    for port in (123, 53):  # NTP (also answered there) and DNS over UDP
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            client.sendto(b"?", ("169.254.169.254", port))
            out[f"udp 169.254.169.254 {port}"] = "sent"
        except OSError as exc:
            out[f"udp 169.254.169.254 {port}"] = type(exc).__name__
        finally:
            client.close()
    return out


results = {}
for uid in uids:
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        if uid:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        os.write(write_end, json.dumps(probe()).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        results[uid] = json.loads(answer.read() or "null")
    os.waitpid(child, 0)
tables = subprocess.run(["nft", "list", "tables"], check=True, capture_output=True, text=True).stdout
print(json.dumps({"results": results, "tables": tables.split("\n")}))
'''


def test_the_models_user_cannot_reach_the_metadata_service(tmp_path):
    """docker/serving/model-egress.sh, as the serving VM runs it before every start, in a network namespace
    with 169.254.169.254 (and OCI's IPv6 metadata address) on its loopback: the model server's user cannot
    connect to it, nor send it anything but DNS; root and the supervisor's user still can, and the model's
    user still reaches everything else."""
    _as_root("a network namespace and nftables rules")
    unshare = require_binary("unshare", how="apt-get install util-linux")
    for tool in ("nft", "ip"):
        require_binary(tool, how="apt-get install nftables iproute2")
    result = subprocess.run([unshare, "--net", sys.executable, "-c", NETNS_PROBE, str(MODEL_EGRESS),
                             "0", str(SUPERVISOR_UID), str(MODEL_UID)], capture_output=True, text=True, timeout=120)
    hint = ("a network namespace of the test's own needs CAP_SYS_ADMIN and CAP_NET_ADMIN (in a container: "
            "--cap-add SYS_ADMIN --cap-add NET_ADMIN): " if "Operation not permitted" in result.stderr else "")
    assert result.returncode == 0, hint + result.stderr[-2000:]
    probed = json.loads(result.stdout)
    reachable = {"tcp 169.254.169.254 80": "connected", "tcp 169.254.169.254 53": "connected",
                 "tcp fd00:c1::a9fe:a9fe 80": "connected", "tcp 127.0.0.1 8080": "connected",
                 "udp 169.254.169.254 123": "sent", "udp 169.254.169.254 53": "sent"}
    assert probed["results"]["0"] == probed["results"][str(SUPERVISOR_UID)] == reachable
    assert probed["results"][str(MODEL_UID)] == {
        **reachable, "tcp 169.254.169.254 80": "ConnectionRefusedError", "tcp fd00:c1::a9fe:a9fe 80": "ConnectionRefusedError",
        "udp 169.254.169.254 123": "PermissionError"}
    assert [t for t in probed["tables"] if t] == ["table inet mlflow_model_egress"]  # applied twice, one table


def test_the_metadata_block_names_the_images_model_user():
    assert (SUPERVISOR_UID, MODEL_UID) == (10001, 10002)
    assert re.findall(r"^MODEL_UID=(\d+)$", MODEL_EGRESS.read_text(), re.M) == [str(MODEL_UID)]
    assert "SERVING_MODEL_USER=mlmodel" in DOCKERFILE and "SERVING_SUPERVISOR_USER=mlflow" in DOCKERFILE
