"""Benchmark: `orm-pack build` of the stack orm-pack ships (target: < 1 s wall, < 200 KB).

    python benchmarks/bench_build.py [--runs N]

Prints the wall time of the whole command (a fresh process, as a user runs it), the time of the
build itself in-process (validation + zip), and the zip's size.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packager"))

from orm_pack.stack import archive  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    source = archive.find_source(None, cwd=ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        walls, builds = [], []
        for run in range(args.runs):
            output = Path(tmp) / f"cli-{run}.zip"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "orm_pack.cli", "build", str(source), "-o", str(output), "-q"],
                           check=True, capture_output=True, cwd=tmp)
            walls.append(time.perf_counter() - start)
            start = time.perf_counter()
            built = archive.build_zip(source, Path(tmp) / f"lib-{run}.zip")
            builds.append(time.perf_counter() - start)
        size = built.size
    print(f"source            {source}")
    print(f"files             {len(built.files)}")
    print(f"zip size          {size:,} bytes ({size / 1024:.1f} KB)   target < 200 KB: {'ok' if size < 200 * 1024 else 'OVER'}")
    print(f"orm-pack build    median {statistics.median(walls):.3f} s wall over {args.runs} runs (min "
          f"{min(walls):.3f} s)   target < 1 s: {'ok' if statistics.median(walls) < 1 else 'OVER'}")
    print(f"  of which build  median {statistics.median(builds) * 1000:.0f} ms (validate + zip, in-process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
