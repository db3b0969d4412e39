"""OCIDs, the one pattern the CLI reads them with, checked for shape before they go into a request path.

An OCID reads `ocid1.<resource type>.<realm>.[region][.future use].<unique id>`:

    ocid1.compartment.oc1..aaaaaaaa…               tenancy-level: the region part is empty
    ocid1.ormjob.oc1.phx.aaaaaaaa…                 regional
    ocid1.vault.oc1.iad.bbpptuh6aacuu.abuwcljr…    vaults and keys fill the "future use" part (a key
                                                   version fills two)

Anything else, above all a value with `/` in it, would be sent as another path than the one meant.

    >>> parse("ocid1.ormjob.oc1.phx.aaaa").type
    'ormjob'
    >>> check("ocid1.ormjob.oc1.phx.aaaa", ("ormjob",), "JOB")
    'ocid1.ormjob.oc1.phx.aaaa'
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from orm_pack.errors import ExitCode, UserError

PATTERN = re.compile(
    r"ocid1\.(?P<type>[a-z0-9]+)\.(?P<realm>[a-z0-9]+)\.(?P<region>[a-z0-9-]*)"
    r"(?:\.[a-z0-9]+)*\.(?P<unique>[a-z0-9]+)"
)


@dataclass(frozen=True)
class Ocid:
    type: str
    realm: str
    region: str  # "" for tenancy-level types
    unique: str


def parse(value: str | None) -> Ocid | None:
    """The parts of `value` when it is an OCID, else None."""
    match = PATTERN.fullmatch(value or "")
    if not match:
        return None
    return Ocid(match["type"], match["realm"], match["region"], match["unique"])


def check(value: str, types: tuple[str, ...], what: str) -> str:
    """`value` when it is an OCID of one of `types`; else a UserError naming `what` (the flag or argument)."""
    ocid = parse(value)
    if ocid is None:
        raise UserError(f"{what} {value!r} is not an OCID (ocid1.{types[0]}.oc1..…): copy it from the console "
                        "or from `orm-pack status`", ExitCode.USAGE)
    if ocid.type not in types:
        raise UserError(f"{what} {value!r} is the OCID of a {ocid.type}, not of a "
                        f"{' or '.join(types)}", ExitCode.USAGE)
    return value


def compartment(value: str) -> str:
    return check(value, ("compartment", "tenancy"), "--compartment")


def job(value: str) -> str:
    return check(value, ("ormjob",), "JOB")
