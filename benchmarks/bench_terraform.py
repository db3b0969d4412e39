#!/usr/bin/env python3
"""Time Terraform with the oci provider double on the harness's fixture configuration.

    .venv/bin/python benchmarks/bench_terraform.py [--runs 3] [--terraform PATH]

Prints the median of each step (init, validate, plan, show -json, apply) over the runs. Target on a 2-core
machine: validate + plan under 3 s.
"""
import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from harness.terraform import Terraform  # noqa: E402
from harness.tools import terraform_103  # noqa: E402

CONFIG = REPO_ROOT / "tests" / "fixtures" / "harness-config"
STEPS = ("init", "validate", "plan", "show", "apply")


def one_run(binary: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "config"
        shutil.copytree(CONFIG, workdir)
        tf = Terraform(workdir, binary=binary)
        timings = {}
        steps = (
            ("init", tf.init),
            ("validate", tf.validate),
            ("plan", lambda: tf.run("plan", "-input=false", "-out=plan.bin")),
            ("show", lambda: tf.show_json("plan.bin")),
            ("apply", lambda: tf.apply(plan_file="plan.bin")),
        )
        for step, action in steps:
            start = time.perf_counter()
            action()
            timings[step] = time.perf_counter() - start
        return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--terraform", default=None, help="Terraform binary (default: the bundled 1.0.3)")
    args = parser.parse_args()
    binary = args.terraform or terraform_103()
    runs = [one_run(binary) for _ in range(args.runs)]
    medians = {step: statistics.median(r[step] for r in runs) for step in STEPS}
    print(f"terraform: {binary}")
    print(f"runs: {args.runs} (median seconds)")
    for step in STEPS:
        print(f"  {step:<9} {medians[step]:6.2f}")
    total = medians["validate"] + medians["plan"]
    print(f"  validate+plan {total:.2f} s (target < 3 s): {'OK' if total < 3 else 'OVER'}")


if __name__ == "__main__":
    main()
