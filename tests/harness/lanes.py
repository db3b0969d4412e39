"""Two lanes for `pytest -n 2` (README's command): the tests that run the runtime (MLflow, MariaDB, nginx)
in one worker, the Terraform plans in the other; the fresh installs, the browser tests, the upgrade journeys
and each fast-lane module go whole to whichever worker is free first.

A lane is one process, so a session fixture (one MariaDB, one `local up`, the deployed profiles) is still
made once per run. One serial process used about 0.9 of the machine's two cores.

The workers know each test's markers, the scheduler in the controlling process knows only node ids: each
worker writes node id -> lane to a file the controller named (`pytest_configure_node`), and the scheduler
reads it once the workers have collected. (xdist's own `--dist loadgroup` appends the group to the node
id, which pytest 9.2's structured node ids no longer allow.)
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from xdist.scheduler import LoadScopeScheduling

RUNTIME_MARKERS = ("dataplane", "install", "browser", "journey")
WORKER_INPUT_KEY = "tests_lanes_file"


def lane_of(item) -> str:
    # The fresh installs, the browser and the upgrade journeys share no server with the other runtime tests:
    # each is a unit of its own, run by whichever worker is free first, which evens out the two lanes' ends.
    # (One unit per journey module went out last, being small, and left a worker idle at the end for minutes.)
    for marker in ("install", "browser", "journey"):
        if item.get_closest_marker(marker):
            return marker
    # The deployed profiles (tests/stack/conftest.py) are made once a lane: a test on one that also runs a server
    # of the runtime goes with the plans, or the runtime lane would deploy every profile again.
    if "deployed" in getattr(item, "fixturenames", ()):
        return "plans"
    if any(item.get_closest_marker(marker) for marker in RUNTIME_MARKERS):
        return "runtime"
    if item.get_closest_marker("terraform"):
        return "plans"
    return item.nodeid.split("::")[0]  # a fast-lane module stays together: its module fixtures run once


def write_lanes(path: str, items) -> None:
    """In a worker: node id -> lane for every collected test (both workers write the same map)."""
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path))
    with os.fdopen(fd, "w") as out:
        json.dump({item.nodeid: lane_of(item) for item in items}, out)
    os.replace(temporary, path)


class LaneScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with the lane as the scope. Scopes go out largest first, so the two lanes
    start at once on the two workers and the fast-lane modules fill in behind."""

    def __init__(self, config, log, lanes_file: Path):
        super().__init__(config, log)
        self.lanes_file = lanes_file
        self._lanes: dict | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._lanes is None:
            self._lanes = json.loads(self.lanes_file.read_text())
        return self._lanes.get(nodeid) or nodeid.split("::")[0]
