"""The serving endpoint's HTTP front against bad clients: each gets a clear answer, none can take it
down. The adapter runs in-process in front of a stand-in model server (the real one is exercised in
test_dataplane_serving.py); requests go over real sockets."""
import http.client
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from dataplane.test_runtime_units import adapter
from harness import loopback

LIMIT = 1024 * 1024
MODEL_URI = "models:/wine-quality/7"


class ModelServerStandIn(BaseHTTPRequestHandler):
    """Answers like `mlflow models serve` (uvicorn): its own Server and Date headers, a short think time."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: bytes):
        self.send_response(status)  # adds Server and Date, as uvicorn does
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer(200, b"{}")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(0.05)
        self._answer(200, b'{"predictions": [5.5]}')


@pytest.fixture(scope="module")
def endpoint():
    backend = loopback.serve(ModelServerStandIn)
    switch = adapter.BackendSwitch()
    front = adapter.AdapterServer(("127.0.0.1", 0), switch, max_body_bytes=LIMIT,
                                  waiting_message=lambda: f"waiting for {MODEL_URI}")
    threading.Thread(target=front.serve_forever, daemon=True).start()
    switch.switch_to(adapter.Backend(port=backend.server_address[1], model_uri=MODEL_URI))
    yield front
    front.shutdown()
    loopback.stop(backend)


def _raw(server, request: bytes, timeout: float = 10) -> bytes:
    """Sends raw bytes, returns everything the server answers until it closes or goes quiet."""
    with socket.create_connection(server.server_address[:2], timeout=timeout) as sock:
        sock.sendall(request)
        sock.settimeout(2)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
    return answer


def _request(server, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read(), response.getheaders()


def test_health_tells_anonymous_callers_the_status_only(endpoint):
    status, headers, body, _ = _request(endpoint, "GET", "/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert adapter.MODEL_HEADER not in headers and MODEL_URI.encode() not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_health_answers_get_and_head_only(endpoint, method):
    status, headers, body, _ = _request(endpoint, method, "/health", body=b"x")
    assert status in (405, 501)  # 501: a method the server does not speak at all
    if status == 405:
        assert headers["Allow"] == "GET, HEAD" and json.loads(body)["error_code"] == "METHOD_NOT_ALLOWED"


def test_a_gigabyte_announced_to_health_is_refused_before_it_is_sent(endpoint):
    answer = _raw(endpoint, b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"GET requests take no body" in answer and b"Connection: close" in answer


def test_a_body_over_the_limit_is_a_413_with_the_limit_in_the_message(endpoint):
    answer = _raw(endpoint, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 209715200\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    message = json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"]
    assert f"over the limit of {LIMIT} bytes" in message and "SERVING_MAX_BODY_BYTES" in message


def test_a_chunked_body_over_the_limit_is_cut_off(endpoint):
    chunk = b"a" * 65536
    request = b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    request += (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (LIMIT // len(chunk) + 2) + b"0\r\n\r\n"
    answer = _raw(endpoint, request)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


@pytest.mark.parametrize("size", [b"-1", b"+10", b"0x10", b"1_0", b""])
def test_a_chunk_size_that_is_not_plain_hex_is_refused_before_the_body_is_read(endpoint, size):
    """A chunk size of -1 made the adapter read to the end of the stream, past the body limit."""
    with socket.create_connection(endpoint.server_address[:2], timeout=10) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + size + b"\r\n" + b"a" * (LIMIT + 4096))
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may have answered and closed already
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"] == "malformed chunked body"
    assert _request(endpoint, "GET", "/health")[0] == 200


@pytest.mark.parametrize("body, message", [
    (b"{not json", "the body is not valid JSON"),
    (b"[" * 100_000, "nested too deeply"),
])
def test_unparsable_json_is_a_400_and_the_server_lives_on(endpoint, body, message):
    status, _, answer, _ = _request(endpoint, "POST", "/invocations", body=body,
                                    headers={"Content-Type": "application/json"})
    assert status == 400 and message in json.loads(answer)["message"]
    assert _request(endpoint, "GET", "/health")[0] == 200


def test_one_server_and_one_date_header(endpoint):
    status, _, _, header_list = _request(endpoint, "POST", "/invocations", body=b'{"inputs": [[1]]}',
                                         headers={"Content-Type": "application/json"})
    names = [name.lower() for name, _ in header_list]
    assert status == 200
    assert names.count("server") == 1 and names.count("date") == 1


def test_a_burst_of_64_clients_is_queued_not_reset(endpoint):
    start = threading.Barrier(64)
    results = []

    def client():
        start.wait()
        try:
            results.append(_request(endpoint, "POST", "/invocations", body=b'{"inputs": [[1]]}',
                                    headers={"Content-Type": "application/json"})[0])
        except OSError as exc:
            results.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [200] * 64
