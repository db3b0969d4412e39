"""Command line of orm-pack: parses arguments, prints, maps UserError to exit codes.

Each command group lives in its own module with a `register(subparsers)` function that adds
its parsers and sets `func(args) -> int` on them; this module holds no cloud or zip logic.
"""
import argparse
import importlib
import sys

from orm_pack import __version__
from orm_pack.errors import UserError

COMMAND_MODULES = (
    "orm_pack.commands.build",
    "orm_pack.commands.deploy",
    "orm_pack.commands.upgrade",
    "orm_pack.commands.doctor",
    "orm_pack.commands.oke",
    "orm_pack.commands.sso",
    "orm_pack.commands.users",
    "orm_pack.commands.connect",
    "orm_pack.commands.local",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orm-pack",
        description="Build the oci-mlflow Resource Manager stack, deploy it to OCI, or run MLflow locally.",
    )
    parser.add_argument("--version", action="version", version=f"orm-pack {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except UserError as exc:
        print(f"orm-pack: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
