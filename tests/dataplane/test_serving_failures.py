"""A model version that cannot be served: the endpoint stays up (503), says why in its log, does
not restart the broken model server in a loop, and leaves no process behind."""
import time

import pytest

from dataplane.stacks import CLIENT_ENV, RUNTIME
from orm_pack.local import processes
from orm_pack.local.ports import free_port
from orm_pack.local.services import python_env, serving_argv

pytestmark = pytest.mark.dataplane


@pytest.mark.parametrize("model, failure, attempt", [
    ("no-such-model", "could not download", "could not download"),      # the download fails
    ("not-a-model", "did not become ready", "starting model server"),    # the model server does not start
])
def test_a_broken_model_is_not_restarted_in_a_loop(tracker, tmp_path, model, failure, attempt):
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "README").write_text("no MLmodel here")
    port = free_port()
    env = dict(python_env(), **CLIENT_ENV, SERVING_MODEL_URI=str(tmp_path / model),
               SERVING_PORT=str(port), SERVING_POLL_SECONDS="0.5", SERVING_MODELS_DIR=str(tmp_path / "copies"))
    env.pop("MLFLOW_TRACKING_URI", None)
    log = tmp_path / "supervisor.log"
    supervisor = tracker.start("serving-broken", serving_argv(RUNTIME), env, log)
    processes.wait_ready(supervisor, f"http://127.0.0.1:{port}/health", 60, accept=(503,))

    deadline = time.monotonic() + 120
    while "will try" not in log.read_text() and time.monotonic() < deadline:
        assert supervisor.alive(), log.read_text()[-2000:]
        time.sleep(0.5)
    assert failure in log.read_text()
    time.sleep(3)  # six more polls
    assert log.read_text().count(attempt) == 1
    assert processes.http_status(f"http://127.0.0.1:{port}/health") == 503
    assert list((tmp_path / "copies").iterdir()) == []  # a failed attempt leaves no copy behind

    tree = processes.stop(supervisor.pid)
    assert not [pid for pid in tree if processes.is_alive(pid)]
