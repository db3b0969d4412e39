"""Benchmark: the suite's time per test family, against the budget in CONTRIBUTING.md.

    PYTEST_ADDOPTS=--junitxml=/tmp/suite.xml CI=true bash .ci/run     # or: .venv/bin/python -m pytest -n 2 --junitxml=...
    python benchmarks/bench_test_budget.py /tmp/suite.xml

Each family is a marker expression; pytest collects its tests (no test runs) and the JUnit report gives
their times (setup, call and teardown). Prints seconds per family, its budget and the slowest modules.
"""
import argparse
import collections
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# family -> (marker expression, budget in seconds); keep in step with CONTRIBUTING.md's table
# (test seconds in the two-lane run `-n 2`, where a test runs about a third slower than alone)
FAMILIES = {
    "fast lane": ("not terraform and not dataplane", 180),
    "terraform": ("terraform and not dataplane", 600),
    "dataplane": ("dataplane and not install and not browser and not journey", 720),
    "install": ("install", 210),
    "browser": ("browser", 180),
    "journey": ("journey", 300),
}


def node_ids(marker_expression: str) -> set[str]:
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                "-m", marker_expression], cwd=ROOT, capture_output=True, text=True, check=True)
    return {line.strip() for line in collected.stdout.splitlines() if "::" in line}


def junit_times(report: Path) -> dict[str, float]:
    times = {}
    for case in ET.parse(report).iter("testcase"):
        node_id = case.get("classname").replace(".", "/") + ".py::" + case.get("name")
        times[node_id] = float(case.get("time") or 0)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit", type=Path, help="a JUnit XML report of a whole run")
    args = parser.parse_args()
    times = junit_times(args.junit)
    print(f"{'family':<11} {'tests':>5} {'seconds':>8} {'budget':>7}")
    over = False
    for family, (expression, budget) in FAMILIES.items():
        ids = node_ids(expression)
        seconds = sum(times.get(node_id, 0.0) for node_id in ids)
        over |= seconds > budget
        print(f"{family:<11} {len(ids):>5} {seconds:>8.0f} {budget:>7}{'  OVER' if seconds > budget else ''}")
    print(f"{'all':<11} {len(times):>5} {sum(times.values()):>8.0f}")
    modules = collections.Counter()
    for node_id, seconds in times.items():
        modules[node_id.split("::", 1)[0]] += seconds
    print("\nslowest modules:")
    for module, seconds in modules.most_common(10):
        print(f"{seconds:8.0f}  {module}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
