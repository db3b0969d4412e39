"""OCIDs minted the way OCI mints them, for every fake and double of the tests.

`ocid1.<resource type>.<realm>.[region][.future use].<unique id>` (OCI documentation, "Resource
Identifiers"). What the shapes look like in the wild, with their sources, is the table in
tests/test_ocid_shapes.py:
- tenancy-level types (compartments, policies, dynamic groups, users, groups, tag namespaces…) leave
  the region empty: `ocid1.compartment.oc1..aaaaaaaa<52>`;
- vaults and keys carry a "future use" part after the region: `ocid1.vault.oc1.iad.<13>.abuwcljr<52>`;
- every other type names its region: the three-letter key for Ashburn and Phoenix, which predate the
  long names (`ocid1.instance.oc1.phx.anyhqljr<52>`), the region's name for every later region
  (`ocid1.vaultsecret.oc1.ap-hyderabad-1.amaaaaaa<52>`).
The unique part is 60 lowercase base32 characters; the same seed always gives the same OCID.
"""
import base64
import hashlib
import re

TENANCY_LEVEL = frozenset({
    "tenancy", "compartment", "policy", "dynamicgroup", "user", "group", "tagnamespace", "tagdefinition",
    "domain", "credential", "customersecretkey", "apikey", "authtoken", "availabilitydomain", "mysqlconfiguration",
    "managementdashboard", "managementsavedsearch",
})
WITH_FUTURE_PART = frozenset({"vault", "key"})  # the vault's 13-character prefix
WITH_TWO_FUTURE_PARTS = frozenset({"keyversion"})  # the vault's prefix, then the version's
# "With the introduction of the Frankfurt region, the format switched from a three-character code to a
# longer string" (OCI documentation, "Resource Identifiers")
SHORT_REGION_KEYS = {"us-ashburn-1": "iad", "us-phoenix-1": "phx"}


def _base32(seed: str, length: int) -> str:
    return base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode().lower()[:length]


def mint(resource_type: str, seed: str = "", region: str = "us-ashburn-1", realm: str = "oc1") -> str:
    """An OCID of `resource_type` in `region` (its name, e.g. eu-frankfurt-1), in the shape OCI gives it."""
    unique = _base32(f"{resource_type}/{seed}", 52)
    if resource_type in TENANCY_LEVEL:
        return f"ocid1.{resource_type}.{realm}..aaaaaaaa{unique}"
    region = SHORT_REGION_KEYS.get(region, region)
    vault_prefix = _base32("future/" + seed, 13)
    if resource_type in WITH_FUTURE_PART:
        return f"ocid1.{resource_type}.{realm}.{region}.{vault_prefix}.abuwcljr{unique}"
    if resource_type in WITH_TWO_FUTURE_PARTS:
        return f"ocid1.{resource_type}.{realm}.{region}.{vault_prefix}.{_base32('version/' + seed, 13)}.abuwcljr{unique}"
    return f"ocid1.{resource_type}.{realm}.{region}.amaaaaaa{unique}"


REGION_KEYS_IN_OCIDS = frozenset(SHORT_REGION_KEYS.values())
_OCID_LITERAL = re.compile(r"ocid1\.[a-z0-9]+\.[a-z0-9]+\.[a-z0-9-]*(?:\.[a-z0-9]+)+")


def shape_problem(ocid: str) -> str | None:
    """What makes `ocid` unlike the OCIDs OCI mints for its type (None when it is alike): the number of
    parts, the region (blank exactly for tenancy-level types; iad/phx or a region's name otherwise) and a
    unique part of 60 lowercase base32 characters."""
    parts = ocid.split(".")
    kind, region, unique = parts[1], parts[3], parts[-1]
    extra = 2 if kind in WITH_TWO_FUTURE_PARTS else 1 if kind in WITH_FUTURE_PART else 0
    if len(parts) != 5 + extra:
        return f"{len(parts)} parts, a {kind} OCID has {5 + extra}"
    if kind in TENANCY_LEVEL and region:
        return f"a {kind} is tenancy-level: its region part is blank"
    if kind not in TENANCY_LEVEL and not (region in REGION_KEYS_IN_OCIDS or re.fullmatch(r"[a-z]+-[a-z]+-\d+", region)):
        return f"a {kind} is regional: its region part is iad, phx or a region's name, not {region!r}"
    if not re.fullmatch(r"[a-z2-7]{60}", unique):
        return "the unique part is not 60 lowercase base32 characters"
    return None


def literals_in(text: str) -> list[str]:
    """Every OCID written out in `text` (a name built in code, like f"ocid1.{kind}…", is not one)."""
    return [match.group(0) for match in _OCID_LITERAL.finditer(text)
            if text[match.end():match.end() + 1] not in ("{", "<")]
