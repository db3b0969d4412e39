"""A model version that cannot be served: the endpoint stays up (503), says why in its log, does
not restart the broken model server in a loop, and leaves no process behind."""
import time

import pytest

from dataplane.stacks import CLIENT_ENV, RUNTIME
from orm_pack.local import processes
from orm_pack.local.ports import free_port
from orm_pack.local.services import python_env, serving_argv

pytestmark = pytest.mark.dataplane


def test_a_broken_model_is_not_restarted_in_a_loop(tracker, tmp_path):
    port = free_port()
    env = dict(python_env(), **CLIENT_ENV, SERVING_MODEL_URI=str(tmp_path / "no-such-model"),
               SERVING_PORT=str(port), SERVING_POLL_SECONDS="0.5")
    env.pop("MLFLOW_TRACKING_URI", None)
    log = tmp_path / "supervisor.log"
    supervisor = tracker.start("serving-broken", serving_argv(RUNTIME), env, log)
    processes.wait_ready(supervisor, f"http://127.0.0.1:{port}/health", 60, accept=(503,))

    deadline = time.monotonic() + 120
    while "will try" not in log.read_text() and time.monotonic() < deadline:
        assert supervisor.alive(), log.read_text()[-2000:]
        time.sleep(0.5)
    assert "did not become ready" in log.read_text()
    time.sleep(3)  # six more polls
    assert log.read_text().count("starting model server") == 1
    assert processes.http_status(f"http://127.0.0.1:{port}/health") == 503

    tree = processes.stop(supervisor.pid)
    assert not [pid for pid in tree if processes.is_alive(pid)]
