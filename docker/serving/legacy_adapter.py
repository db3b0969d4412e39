"""HTTP front of the serving endpoint: forwards to the current `mlflow models serve` backend and
accepts the MLflow 1.x request format besides the current ones.

MLflow 1.x clients send `Content-Type: application/json; format=pandas-split` with
`{"columns": [...], "data": [[...]]}` (or `format=pandas-records` with `[{...}]`, or no format
parameter at all); MLflow >= 2 answers those with 415/400. Such requests are rewritten to
`{"dataframe_split": ...}` / `{"dataframe_records": ...}` and their answer is unwrapped back to the
1.x shape (a bare list instead of `{"predictions": [...]}`). Current formats (dataframe_split,
dataframe_records, instances, inputs, CSV) pass through untouched.

The backend can be swapped while requests flow (BackendSwitch): new requests go to the new backend,
the old one is stopped only after its in-flight requests have finished.

Bad clients get clear answers and cannot take the process down: bodies are capped (413 beyond
`max_body_bytes`, SERVING_MAX_BODY_BYTES in the supervisor), GET and HEAD never have a body read,
JSON that does not parse or nests too deep is a 400, `/health` (open without a password behind the
proxy) answers GET/HEAD with the status only, and the listen backlog holds bursts of clients.
"""
import http.client
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")

LEGACY_FORMATS = {"pandas-split": "dataframe_split", "pandas-records": "dataframe_records"}
CURRENT_KEYS = {"dataframe_split", "dataframe_records", "instances", "inputs"}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "trailers", "transfer-encoding", "upgrade", "content-length", "host"}
MODEL_HEADER = "X-MLflow-Model-URI"
HEALTH_PATH = "/health"
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # a real batch of rows is a few MB at most
# Each answer carries this process's own Server and Date headers, never a second pair from the backend.
OWN_HEADERS = {"server", "date"}


class LegacyRequestError(ValueError):
    """The request claims a legacy format but its body does not match it (answered with 400)."""


# --- request / response translation --------------------------------------------------------------

def parse_content_type(value: str) -> tuple[str, dict]:
    media_type, *params = (value or "").split(";")
    parsed = {}
    for param in params:
        key, sep, val = param.partition("=")
        if sep:
            parsed[key.strip().lower()] = val.strip().strip('"')
    return media_type.strip().lower(), parsed


def _legacy_format_of(doc) -> str | None:
    """Recognizes a 1.x body sent without a format parameter (1.x defaulted to pandas-split)."""
    if isinstance(doc, dict) and "data" in doc and set(doc) <= {"columns", "data", "index"}:
        return "pandas-split"
    if isinstance(doc, list) and doc and all(isinstance(row, dict) for row in doc):
        return "pandas-records"
    return None


def translate_request(content_type: str, body: bytes) -> tuple[str, bytes, bool]:
    """Returns (content type, body, is_legacy) to forward for one /invocations request."""
    media_type, params = parse_content_type(content_type)
    fmt = params.pop("format", None)
    if media_type != "application/json":
        return content_type, body, False
    if fmt is not None and fmt not in LEGACY_FORMATS:
        raise LegacyRequestError(
            f"format={fmt} is not supported: use format=pandas-split or format=pandas-records (MLflow 1.x), "
            "or a JSON body with one of dataframe_split, dataframe_records, instances, inputs")
    try:
        doc = json.loads(body or b"null")
    except RecursionError:
        raise LegacyRequestError("the JSON body is nested too deeply to parse") from None
    except ValueError as exc:
        raise LegacyRequestError(f"the body is not valid JSON: {exc}") from exc
    if fmt is None:
        if isinstance(doc, dict) and CURRENT_KEYS & set(doc):
            return content_type, body, False
        fmt = _legacy_format_of(doc)
        if fmt is None:
            return content_type, body, False
    if fmt == "pandas-split" and not (isinstance(doc, dict) and "data" in doc):
        raise LegacyRequestError('format=pandas-split needs {"columns": [...], "data": [[...], ...]}')
    if fmt == "pandas-records" and not isinstance(doc, list):
        raise LegacyRequestError('format=pandas-records needs a list of records: [{"column": value, ...}, ...]')
    charset = f"; charset={params['charset']}" if "charset" in params else ""
    return "application/json" + charset, json.dumps({LEGACY_FORMATS[fmt]: doc}).encode(), True


def translate_response(body: bytes) -> bytes:
    """MLflow 1.x answered a bare list of predictions; MLflow >= 2 wraps it in {"predictions": ...}."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if isinstance(doc, dict) and set(doc) == {"predictions"}:
        return json.dumps(doc["predictions"]).encode()
    return body


# --- backend switching -----------------------------------------------------------------------------

@dataclass
class Backend:
    """One running `mlflow models serve`, reachable on 127.0.0.1:port."""
    port: int
    model_uri: str
    in_flight: int = 0
    idle: threading.Condition = field(default_factory=threading.Condition)


class BackendSwitch:
    """Holds the backend new requests go to; counts in-flight requests per backend."""

    def __init__(self):
        self._lock = threading.Lock()
        self._current: Backend | None = None

    @property
    def current(self) -> Backend | None:
        return self._current

    def acquire(self) -> Backend | None:
        with self._lock:
            backend = self._current
            if backend is not None:
                with backend.idle:
                    backend.in_flight += 1
            return backend

    @staticmethod
    def release(backend: Backend) -> None:
        with backend.idle:
            backend.in_flight -= 1
            backend.idle.notify_all()

    def switch_to(self, backend: Backend | None) -> Backend | None:
        """Makes `backend` current and returns the previous one."""
        with self._lock:
            previous, self._current = self._current, backend
            return previous

    @staticmethod
    def wait_idle(backend: Backend, timeout: float) -> bool:
        with backend.idle:
            return backend.idle.wait_for(lambda: backend.in_flight == 0, timeout=timeout)


# --- HTTP front ----------------------------------------------------------------------------------

class RequestRejected(Exception):
    """A request answered before it reaches the model server; `close` drops the connection after."""

    def __init__(self, status: int, error_code: str, message: str, close: bool = False, headers=()):
        super().__init__(message)
        self.status, self.error_code, self.close, self.headers = status, error_code, close, tuple(headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the peer's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: "AdapterServer"

    def do_GET(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        if self.server.access_log:
            super().log_message(format, *args)

    # -- the request -------------------------------------------------------------------------------
    def _declared_length(self) -> int | None:
        """Content-Length, or None for a chunked body."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        text = self.headers.get("Content-Length") or "0"
        if not text.isdigit():
            raise RequestRejected(400, "BAD_REQUEST", f"Content-Length {text!r} is not a number", close=True)
        return int(text)

    def _too_large(self) -> RequestRejected:
        limit = self.server.max_body_bytes
        return RequestRejected(413, "REQUEST_TOO_LARGE", f"the request body is over the limit of {limit} bytes "
                               f"({limit // 1048576} MiB, SERVING_MAX_BODY_BYTES); send smaller batches", close=True)

    def _read_body(self) -> bytes:
        limit = self.server.max_body_bytes
        length = self._declared_length()
        if length is not None:
            if length > limit:
                raise self._too_large()
            return self.rfile.read(length)
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(1024).split(b";")[0].strip()
            # chunk-size is 1*HEXDIG (RFC 9112 7.1): int() would also take "-1", which reads to the end of
            # the stream past the limit, and "+", "0x" or "_" forms
            if not CHUNK_SIZE.fullmatch(line):
                raise RequestRejected(400, "BAD_REQUEST", "malformed chunked body", close=True)
            size = int(line, 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > limit:
                raise self._too_large()
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _no_body(self) -> None:
        """GET and HEAD carry no body; one that does is refused without reading it."""
        if self._declared_length() != 0:
            raise RequestRejected(400, "BAD_REQUEST", f"{self.command} requests take no body", close=True)

    # -- the answer --------------------------------------------------------------------------------
    def _reply(self, status: int, body: bytes, headers=(), content_type="application/json"):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, error_code: str, message: str, headers=()):
        self._reply(status, json.dumps({"error_code": error_code, "message": message}).encode(), headers)

    def _handle(self):
        try:
            if self.path.split("?")[0] == HEALTH_PATH:
                return self._health()
            if self.command in ("GET", "HEAD"):
                self._no_body()
                body = b""
            else:
                body = self._read_body()
            self._forward(body)
        except RequestRejected as rejected:
            if rejected.close:
                self.close_connection = True
                rejected.headers += (("Connection", "close"),)
            self._error(rejected.status, rejected.error_code, str(rejected), rejected.headers)

    def _health(self):
        """Open to anyone behind the proxy: the status and nothing about the model."""
        if self.command not in ("GET", "HEAD"):
            raise RequestRejected(405, "METHOD_NOT_ALLOWED", "/health answers GET and HEAD only", close=True,
                                  headers=[("Allow", "GET, HEAD")])
        self._no_body()
        backend = self.server.switch.acquire()
        if backend is None:
            return self._reply(503, b'{"status": "starting"}')
        try:
            status, _, _ = self.server.send_to(backend, "GET", HEALTH_PATH, b"", {})
        except OSError:
            status = 503
        finally:
            self.server.switch.release(backend)
        self._reply(200 if status == 200 else 503, b'{"status": "ok"}' if status == 200 else b'{"status": "unhealthy"}')

    def _forward(self, body: bytes):
        content_type = self.headers.get("Content-Type", "")
        legacy = False
        if self.command == "POST" and self.path.split("?")[0] == "/invocations":
            try:
                content_type, body, legacy = translate_request(content_type, body)
            except LegacyRequestError as exc:
                raise RequestRejected(400, "BAD_REQUEST", str(exc)) from None
        backend = self.server.switch.acquire()
        if backend is None:
            return self._error(503, "TEMPORARILY_UNAVAILABLE", self.server.waiting_message())
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if content_type:
                headers["Content-Type"] = content_type
            status, response_headers, response_body = self.server.send_to(backend, self.command, self.path,
                                                                          body, headers)
        except OSError as exc:
            return self._error(502, "BAD_GATEWAY", f"model server for {backend.model_uri} failed: {exc}")
        finally:
            self.server.switch.release(backend)
        if legacy and status == 200:
            response_body = translate_response(response_body)
        dropped = HOP_BY_HOP | OWN_HEADERS | {"content-type"}
        passed = [(k, v) for k, v in response_headers if k.lower() not in dropped]
        passed.append((MODEL_HEADER, backend.model_uri))
        response_type = dict((k.lower(), v) for k, v in response_headers).get("content-type", "application/json")
        self._reply(status, response_body, passed, response_type)


class AdapterServer(ThreadingHTTPServer):
    """Threaded HTTP server; one keep-alive connection per thread and backend."""

    daemon_threads = True
    # The kernel queue of connections not yet accepted (socketserver's default is 5): a burst of
    # clients through the proxy must wait here, not be reset.
    request_queue_size = 256

    def __init__(self, address, switch: BackendSwitch, waiting_message=lambda: "no model is loaded yet",
                 access_log=False, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
        super().__init__(address, _Handler)
        self.switch = switch
        self.max_body_bytes = max_body_bytes
        self.waiting_message = waiting_message
        self.access_log = access_log
        self._connections = threading.local()

    def _connection(self, backend: Backend, fresh: bool) -> http.client.HTTPConnection:
        cache = self._connections.__dict__.setdefault("by_port", {})
        if fresh and backend.port in cache:
            cache.pop(backend.port).close()
        if backend.port not in cache:
            cache[backend.port] = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=600)
        return cache[backend.port]

    def send_to(self, backend: Backend, method: str, path: str, body: bytes, headers: dict):
        for attempt in (0, 1):
            connection = self._connection(backend, fresh=attempt > 0)
            try:
                connection.request(method, path, body=body if method != "GET" or body else None, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the backend had already closed: retry once on a new one.
                connection.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")
