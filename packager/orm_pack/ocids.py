"""OCIDs checked for shape before they go into a request path.

An OCID reads `ocid1.<resource type>.<realm>.[region][.future use].<unique id>`, e.g.
`ocid1.compartment.oc1..aaaa…` (no region) or `ocid1.ormjob.oc1.phx.aaaa…`. Anything else, above all
a value with `/` in it, would be sent as another path than the one meant.

    >>> check("ocid1.ormjob.oc1.phx.aaaa", ("ormjob",), "JOB")
    'ocid1.ormjob.oc1.phx.aaaa'
"""
from __future__ import annotations

import re

from .errors import ExitCode, UserError

_OCID = re.compile(r"ocid1\.(?P<type>[a-z0-9]+)\.(?P<realm>[a-z0-9]+)\.[a-z0-9-]*(\.[a-z0-9-]+)?\.[a-zA-Z0-9]+")


def check(value: str, types: tuple[str, ...], what: str) -> str:
    """`value` when it is an OCID of one of `types`; else a UserError naming `what` (the flag or argument)."""
    match = _OCID.fullmatch(value or "")
    if not match:
        raise UserError(f"{what} {value!r} is not an OCID (ocid1.{types[0]}.oc1..…): copy it from the console "
                        "or from `orm-pack status`", ExitCode.USAGE)
    if match.group("type") not in types:
        raise UserError(f"{what} {value!r} is the OCID of a {match.group('type')}, not of a "
                        f"{' or '.join(types)}", ExitCode.USAGE)
    return value


def compartment(value: str) -> str:
    return check(value, ("compartment", "tenancy"), "--compartment")


def job(value: str) -> str:
    return check(value, ("ormjob",), "JOB")
