"""The one HTTP client the package speaks to MLflow with, the tracking server behind its proxy and the
serving endpoint: http.client, no retries, no hidden redirects, nothing but the standard library (a clean
`pip install` of orm-pack has no HTTP client). `orm-pack users` and `orm-pack doctor` both use it."""
from __future__ import annotations

import http.client
import json
from base64 import b64encode
from dataclasses import dataclass
from urllib.parse import urlsplit

from orm_pack.mlflow_api import tls

BLOCK = 1024 * 1024  # read and send size, for uploads of tens of MB


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict
    body: bytes
    reason: str = ""

    def json(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            return {}

    def text(self, limit: int = 160) -> str:
        return " ".join(self.body.decode(errors="replace").split())[:limit]


class Endpoint:
    """One HTTPS (or HTTP) base URL, spoken to with http.client: no retries, no hidden redirects."""

    def __init__(self, url: str, username: str, password: str, timeout: float, verify_tls: bool = True,
                 ca_file: str | None = None):
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL")
        self.url, self.scheme, self.host = url.rstrip("/"), parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.authority = parts.netloc.rsplit("@", 1)[-1]
        self.authorization = "Basic " + b64encode(f"{username}:{password}".encode()).decode()
        self.timeout = timeout
        # verify_tls: with the CA in ca_file, else the system's trusted CAs (OSError when ca_file cannot be read)
        self.verify_tls, self.ca_file = verify_tls, ca_file
        self.context = tls.ssl_context(ca_file, verify=verify_tls)

    def connection(self) -> http.client.HTTPConnection:
        if self.scheme == "http":
            return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout, blocksize=BLOCK)
        return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context,
                                           blocksize=BLOCK)

    def request(self, method: str, path: str, body=None, headers: dict | None = None, auth: bool = True) -> Answer:
        connection = self.connection()
        try:
            sent = {"Host": self.authority, **(headers or {})}
            if auth:
                sent["Authorization"] = self.authorization
            if isinstance(body, (dict, list)):
                body, sent["Content-Type"] = json.dumps(body).encode(), "application/json"
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read(), response.reason)
        finally:
            connection.close()

