"""A warm start for the provider doubles.

Terraform starts a provider's process for each walk of each command, eight per plan of the stack (the oci
double twice per walk, for the default and the home-region provider). Each Python start imports gRPC, the
plugin protocol and the double: ~0.2 s, most of a plan's time. A fork server imports all of that once;
the launcher Terraform runs asks it to fork a child that takes over the launcher's stdin, stdout,
stderr, environment, working directory and arguments, and then runs the double's `main()` exactly as a
fresh process would. The launcher waits for the child and exits with its code; when the launcher goes
away (Terraform killed it), the child does too. Without a server the launcher serves in-process, so
nothing depends on the server but the time.
"""
import importlib
import marshal
import os
import socket
import struct
import sys

# The launcher imports this module at every provider start: the standard library modules the server
# and the test process need are imported where they are used.

ENV_VAR = "OCI_DOUBLE_FORKSERVER"
# Modules the children run; imported (with their heavy dependencies) before the first fork.
MODULES = ("harness.double.provider", "harness.time_double",
           # what the `tf` package imports only once it serves, and its TLS certificate's cache
           "tf.runner", "tf.gen.grpc_controller_pb2_grpc", "tf.gen.grpc_stdio_pb2_grpc", "cryptography.x509",
           "cryptography.hazmat.primitives.serialization", "cryptography.hazmat.primitives.asymmetric.rsa")
_HEADER = struct.Struct("!I")


# --- the launcher's side: standard library only, it runs at every provider start -------------------------

def launch(module: str) -> None:
    """Run provider `module` for Terraform: in a child of the fork server if one answers, else here."""
    address = os.environ.get(ENV_VAR)
    if address:
        code = _run_in_server(address, module)
        if code is not None:
            sys.exit(code)
    importlib.import_module(module).main()


def _run_in_server(address: str, module: str) -> int | None:
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(address)
    except OSError:
        return None  # no server (any more): start cold
    request = marshal.dumps({"module": module, "argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ)})
    socket.send_fds(connection, [_HEADER.pack(len(request))], [0, 1, 2])
    connection.sendall(request)
    reply = b""
    while chunk := connection.recv(64):
        reply += chunk
    # No reply: the server or the child died before the child reported; the child wrote why on stderr.
    return int(reply) if reply else 1


# --- the server's side ------------------------------------------------------------------------------------

def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    header, fds, _flags, _address = socket.recv_fds(connection, _HEADER.size, 3)
    while len(header) < _HEADER.size:
        header += connection.recv(_HEADER.size - len(header))
    (length,) = _HEADER.unpack(header)
    body = b""
    while len(body) < length:
        chunk = connection.recv(length - len(body))
        if not chunk:
            raise EOFError("the launcher closed its connection mid-request")
        body += chunk
    return marshal.loads(body), fds


def _run_child(connection: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: become the launcher's process, serve the provider, report the exit code."""
    code = 1
    try:
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = request["argv"]

        import threading

        def exit_with_launcher():  # Terraform killed the launcher: nobody waits for this child any more
            connection.recv(1)
            os._exit(1)

        threading.Thread(target=exit_with_launcher, daemon=True).start()
        try:
            importlib.import_module(request["module"]).main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: B036 - whatever happened, the launcher must hear a code
        import traceback

        traceback.print_exc()
    finally:
        try:
            connection.sendall(str(code).encode())
        finally:
            os._exit(code)


def _reap_children() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def serve(address: str, parent_pid: int) -> None:
    """Accept launchers on `address` until the process that started this server is gone."""
    for module in MODULES:
        importlib.import_module(module)
    from harness.double.schema import load_provider_schema

    load_provider_schema()  # the same file for every child: read it once
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    listener.settimeout(0.5)
    sys.stdout.flush()
    sys.stderr.flush()
    while os.getppid() == parent_pid:
        _reap_children()
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        connection.settimeout(None)
        try:
            request, fds = _receive(connection)
        except (OSError, EOFError, ValueError):
            connection.close()
            continue
        if os.fork() == 0:
            listener.close()
            _run_child(connection, request, fds)
        connection.close()
        for fd in fds:
            os.close(fd)


# --- the test process's side ------------------------------------------------------------------------------

_started: dict = {}  # pid of the test process -> (socket, subprocess.Popen)


def address() -> str:
    """The socket of this process's fork server, started on first use and stopped at exit."""
    return server()[0]


def server() -> tuple:
    """(socket, process) of this process's fork server, started on first use and stopped at exit."""
    import atexit
    import subprocess
    import tempfile
    import time
    from pathlib import Path

    if os.getpid() in _started:
        return _started[os.getpid()]
    directory = tempfile.mkdtemp(prefix="oci-double-forkserver-")
    path = str(Path(directory) / "socket")
    tests_dir = str(Path(__file__).resolve().parents[1])
    process = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {tests_dir!r}); "
                               f"from harness.forkserver import serve; serve({path!r}, {os.getpid()})"],
        stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the provider fork server did not start (exit {process.poll()})")
        time.sleep(0.02)

    def stop():
        process.terminate()
        process.wait(timeout=10)
        for leftover in (path, directory):
            try:
                os.remove(leftover) if leftover == path else os.rmdir(leftover)
            except OSError:
                pass

    atexit.register(stop)
    _started[os.getpid()] = (path, process)
    return _started[os.getpid()]
