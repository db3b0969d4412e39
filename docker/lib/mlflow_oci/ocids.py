"""OCIDs, the one pattern the runtime reads them with.

An OCID reads `ocid1.<resource type>.<realm>.[region][.future use].<unique id>`: tenancy-level types
leave the region empty (`ocid1.compartment.oc1..aaaa…`), vaults and keys fill the "future use" part
(`ocid1.vault.oc1.iad.bbpptuh6aacuu.abuwcljr…`), a key version two.
"""
import re

PATTERN = re.compile(
    r"ocid1\.(?P<type>[a-z0-9]+)\.(?P<realm>[a-z0-9]+)\.(?P<region>[a-z0-9-]*)"
    r"(?:\.[a-z0-9]+)*\.(?P<unique>[a-z0-9]+)"
)


def is_ocid(value, resource_type: str) -> bool:
    """True when `value` is an OCID of `resource_type` (e.g. "vault", "vaultsecret")."""
    match = PATTERN.fullmatch(value or "") if isinstance(value, str) else None
    return bool(match) and match["type"] == resource_type
