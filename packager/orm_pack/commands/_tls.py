"""--ca-file and --insecure, as `orm-pack doctor`, `users` and `connect` take them."""
from __future__ import annotations

import os
import sys

from orm_pack.errors import ExitCode, UserError
from orm_pack.mlflow_api import tls


def add_arguments(parser) -> None:
    """--ca-file and --insecure, as doctor, users and connect take them."""
    parser.add_argument("--ca-file", metavar="FILE",
                        help=f"the CA certificate to verify the server with (default: ${tls.CA_ENV}, else the "
                             "system's trusted CAs)")
    parser.add_argument("--insecure", action="store_true",
                        help="do not verify the server's certificate (an escape hatch: anyone on the path could "
                             "read the password)")


def settings(args, environ=None) -> tuple[bool, str | None]:
    """(verify, ca_file) from --insecure, --ca-file and $MLFLOW_TRACKING_SERVER_CERT_PATH; warns on stderr
    when nothing is verified, and refuses a CA file that cannot be read."""
    env = os.environ if environ is None else environ
    if args.insecure:
        print("orm-pack: WARNING: --insecure: the server's certificate is not verified; anyone on the network path "
              "could pose as it and read the password", file=sys.stderr)
        return False, None
    ca_file = args.ca_file or env.get(tls.CA_ENV) or None
    if ca_file:
        source = "--ca-file" if args.ca_file else tls.CA_ENV
        try:
            tls.ssl_context(ca_file)
        except (OSError, ValueError) as exc:
            raise UserError(f"{source} {ca_file}: not a readable CA certificate ({exc})", ExitCode.USAGE) from None
        ca_file = os.path.abspath(ca_file)
    return True, ca_file
