"""Shared by the bench_runtime_* scripts: a local runtime (orm-pack local) in a throwaway state
directory, timing statistics, and process-tree memory from /proc."""
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "packager"))

from orm_pack.local import launcher, processes  # noqa: E402
from orm_pack.local.ports import free_port  # noqa: E402

CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
              "MLFLOW_TRACKING_INSECURE_TLS": "true"}


@contextlib.contextmanager
def local_runtime(serving: bool, **options):
    """`orm-pack local up` in a temporary directory; yields (endpoints, direct tracking URL)."""
    options.setdefault("poll_seconds", 1)
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as state_dir:
        endpoints = launcher.up(launcher.LocalOptions(
            state_dir=Path(state_dir), tracking_port=free_port(), serving_port=free_port(), serving=serving,
            **options))
        os.environ.update(CLIENT_ENV, MLFLOW_TRACKING_USERNAME=endpoints.credentials.username,
                          MLFLOW_TRACKING_PASSWORD=endpoints.credentials.password)
        try:
            direct = next(record.url for record in endpoints.services if record.name == "tracking")
            yield endpoints, direct
        finally:
            launcher.down(Path(state_dir))


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summary(samples_ms: list[float]) -> str:
    return (f"p50 {percentile(samples_ms, 0.5):7.2f} ms  p99 {percentile(samples_ms, 0.99):7.2f} ms  "
            f"mean {statistics.fmean(samples_ms):7.2f} ms  n={len(samples_ms)}")


def tree_memory_kib(pid: int) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in KiB over pid and its descendants; PSS counts shared pages once."""
    rss = pss = 0
    for member in {pid} | processes.descendants(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss
