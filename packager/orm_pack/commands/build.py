"""`orm-pack build`: argument parsing and printing over the stack archive (stack/archive.py)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from orm_pack.stack import archive

DEFAULT_OUTPUT = Path("dist") / "oci-mlflow-stack.zip"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "build",
        help="build the Resource Manager stack zip",
        description="Validate schema.yaml against the Terraform variables and build a deterministic stack zip "
        "(stack/*.tf, schema.yaml, userdata/, docker/ at the zip root).",
    )
    parser.add_argument(
        "source", nargs="?", metavar="SOURCE",
        help="directory holding stack/ and schema.yaml (default: the current checkout, else the stack bundled "
        "with orm-pack)",
    )
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"zip to write (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not list the files")
    parser.set_defaults(func=run_build)

    check = subparsers.add_parser(
        "check",
        help="check a built stack zip as Resource Manager reads it",
        description="Check a stack zip before it is published or uploaded: its size, that it holds only stack "
        "files, and schema.yaml against Resource Manager's meta schema and the Terraform in the zip.",
    )
    check.add_argument("zip", type=Path, metavar="ZIP", help="the stack zip (e.g. dist/oci-mlflow-stack.zip)")
    check.set_defaults(func=run_check)


def run_build(args: argparse.Namespace) -> int:
    source = archive.find_source(args.source)
    built = archive.build_zip(source, args.output)
    if args.json:
        print(json.dumps({"path": str(built.path), "sha256": built.sha256, "size": built.size,
                          "files": list(built.files), "source": str(source)}, indent=2))
        return 0
    console = Console(highlight=False)
    if not args.quiet:
        for name in built.files:
            console.print(f"  {name}")
    console.print(f"source  {source}")
    console.print(f"zip     {built.path}  ({len(built.files)} files, {built.size:,} bytes)")
    console.print(f"sha256  {built.sha256}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    artifact = archive.read_zip(args.zip, what="ZIP")
    print(f"{args.zip}: {len(artifact.files)} files, {artifact.size:,} bytes, sha256 {artifact.sha256}; "
          "schema.yaml passes Resource Manager's meta schema and matches the Terraform variables")
    return 0
