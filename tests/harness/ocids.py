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

TENANCY_LEVEL = frozenset({
    "tenancy", "compartment", "policy", "dynamicgroup", "user", "group", "tagnamespace", "tagdefinition",
    "domain", "credential", "customersecretkey", "apikey", "authtoken",
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
