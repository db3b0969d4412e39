"""Deterministic values for what the cloud would compute: OCIDs, addresses, timestamps, data sources."""
import fnmatch
import hashlib
import json
import os
import re
from copy import deepcopy
from pathlib import Path

from tf.types import Unknown

from .. import ocids
from .planning import mark_computed_unknown

FIXTURES_FILE = Path(__file__).resolve().parent / "fixtures.json"
_SERVICE_PREFIXES = ("core_", "identity_", "objectstorage_", "kms_", "vault_", "mysql_", "containerengine_")


def digest(*parts) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()


def config_digest(config) -> str:
    return digest(json.dumps(config, sort_keys=True, default=str))


# Attributes named <kind>_id whose OCID kind is another.
_ATTRIBUTE_KINDS = {"kms_key_id": "key", "tag_namespace_id": "tagnamespace", "private_ip_id": "privateip",
                    "log_group_id": "loggroup"}
# Types whose OCID kind is not their name without the service prefix. OCI Certificates mints
# ocid1.certificate.… and ocid1.certificateauthority.… (its API reference's examples), which what reads them
# checks (orm-pack oke, the runtime's mlflow_oci.certificates).
_OCID_KINDS = {"oci_vault_secret": "vaultsecret", "oci_identity_tag": "tagdefinition",
               "oci_certificates_management_certificate": "certificate",
               "oci_certificates_management_certificate_authority": "certificateauthority",
               # Logging's API reference: ocid1.log.… and ocid1.loggroup.… (the runtime's shipper checks the former)
               "oci_logging_log": "log", "oci_logging_log_group": "loggroup",
               "oci_logging_unified_agent_configuration": "unifiedagentconfiguration",
               # Monitoring's and Notifications' API references: ocid1.alarm.…, ocid1.onstopic.…, ocid1.onssubscription.…
               "oci_monitoring_alarm": "alarm", "oci_ons_notification_topic": "onstopic",
               "oci_ons_subscription": "onssubscription"}


# Types whose id is no OCID: the provider makes one up from a hash of the arguments (tfresource's
# GenerateDataSourceHashID, a prefix and a CRC-32), as the dashboard import's ID() does
# (internal/service/management_dashboard/management_dashboard_management_dashboards_import_resource.go, v7.19.0).
_HASH_ID_PREFIXES = {"oci_management_dashboard_management_dashboards_import":
                     "ManagementDashboardManagementDashboardsImportResource-"}


def _ocid_kind(type_name: str) -> str:
    if type_name in _OCID_KINDS:
        return _OCID_KINDS[type_name]
    kind = type_name[len("oci_"):]
    for prefix in _SERVICE_PREFIXES:
        if kind.startswith(prefix):
            kind = kind[len(prefix):]
            break
    return kind.replace("_", "")


class Faker:
    """Fills unknown values of one object; the same type, seed and path always give the same value."""

    def __init__(self, type_name: str, seed: str, region: str | None = None):
        self.type_name = type_name
        self.seed = seed
        self.region = region or "us-ashburn-1"

    def scalar(self, cty_type, path):
        name = path[-1] if path else ""
        h = digest(self.type_name, self.seed, *path)
        if cty_type == "string":
            return self._string(name, h)
        if cty_type == "number":
            return 1
        if cty_type == "bool":
            return False
        if isinstance(cty_type, list):
            if cty_type[0] in ("list", "set"):
                return []
            if cty_type[0] == "map":
                return {}
            if cty_type[0] == "object":
                return {k: None for k in cty_type[1]}
        return None

    def _string(self, name: str, h: str) -> str:
        if self.type_name.startswith("oci_identity_domains_") and name in ("id", "name"):
            return h[:32]  # identity domain resources have 32-hex ids; an app's name is its OAuth client id
        if self.type_name == "oci_identity_domains_app" and name == "client_secret":
            return f"idcscs-{h[32:68]}"
        if name == "id" and self.type_name in _HASH_ID_PREFIXES:
            return f"{_HASH_ID_PREFIXES[self.type_name]}{int(h[:8], 16)}"
        if name == "id":
            return ocids.mint(_ocid_kind(self.type_name), h, self.region)
        if name.endswith("_id"):
            kind = _ATTRIBUTE_KINDS.get(name, name[:-3].replace("_", ""))
            return ocids.mint(kind, h, self.region)
        if self.type_name == "oci_core_public_ip" and name == "ip_address" or "public_ip" in name:
            return f"203.0.113.{int(h[:2], 16) % 250 + 2}"  # TEST-NET-3, never routable
        if "ip_address" in name or name in ("private_ip", "ip"):
            return f"10.0.{int(h[:2], 16) % 250}.{int(h[2:4], 16) % 250 + 2}"
        if name.startswith("time_"):
            return "2026-01-01T00:00:00.000Z"
        if name == "state":
            return "AVAILABLE"
        return f"fake-{name}-{h[:8]}"

    def fill(self, block: dict, value, path=()):
        """Replace every Unknown by a fake, keeping known values; add missing keys as null."""
        if value is None:
            return None
        out = dict(value)
        for name, attr in block.get("attributes", {}).items():
            if out.get(name) is Unknown:
                out[name] = self.scalar(attr["type"], path + (name,))
            else:
                out.setdefault(name, None)
        for name, nested in block.get("block_types", {}).items():
            inner = out.get(name)
            single = nested["nesting_mode"] in ("single", "group")
            if inner is None or inner is Unknown:
                out[name] = None if single else ({} if nested["nesting_mode"] == "map" else [])
            elif single:
                out[name] = self.fill(nested["block"], inner, path + (name,))
            elif nested["nesting_mode"] == "map":
                out[name] = {k: self.fill(nested["block"], v, path + (name, k)) for k, v in inner.items()}
            else:
                out[name] = [self.fill(nested["block"], v, path + (name, str(i))) for i, v in enumerate(inner)]
        return out


def load_fixtures() -> dict:
    """Built-in fixtures, with whole entries replaced by the JSON file named in OCI_DOUBLE_FIXTURES."""
    fixtures = json.loads(FIXTURES_FILE.read_text())
    fixtures.pop("_comment", None)
    override = os.environ.get("OCI_DOUBLE_FIXTURES")
    if override:
        for type_name, entry in json.loads(Path(override).read_text()).items():
            fixtures[type_name] = entry
    return fixtures


def _substitute(value, config: dict):
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: str(config.get(m.group(1)) or m.group(0)), value)
    if isinstance(value, list):
        return [_substitute(v, config) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, config) for k, v in value.items()}
    return value


def _conform(cty_type, value):
    """Shape a fixture value to a cty type: objects get every attribute key, extra keys go."""
    if value is None or not isinstance(cty_type, list):
        return value
    kind = cty_type[0]
    if kind in ("list", "set"):
        return [_conform(cty_type[1], v) for v in value]
    if kind == "map":
        return {k: _conform(cty_type[1], v) for k, v in value.items()}
    if kind == "object":
        return {k: _conform(t, value.get(k)) for k, t in cty_type[1].items()}
    return value


def _matches_filters(element: dict, filters) -> bool:
    """`filter { name, values, regex }` blocks, applied to the listed elements as the provider does."""
    for f in filters or []:
        actual = element.get(f["name"])
        text = str(actual).lower() if isinstance(actual, bool) else str(actual)
        values = f.get("values") or []
        if f.get("regex"):
            matched = any(re.search(v, text) for v in values)
        else:
            matched = text in values
        if not matched:
            return False
    return True


def _matches_arguments(element: dict, config: dict, block: dict) -> bool:
    for name, attr in block.get("attributes", {}).items():
        wanted = config.get(name)
        if wanted is None or wanted is Unknown or name == "id" or not (attr.get("optional") or attr.get("required")):
            continue
        if name == "shape" and "x_shapes" in element:
            if not any(fnmatch.fnmatch(wanted, p) for p in element["x_shapes"]):
                return False
        elif name in element:
            if isinstance(wanted, list):
                if element[name] not in wanted:
                    return False
            elif element[name] != wanted:
                return False
    return True


def _sorted_newest_first(elements: list) -> list:
    # The real list APIs of images and similar resources default to TIMECREATED descending.
    if all("time_created" in e for e in elements):
        return sorted(elements, key=lambda e: e["time_created"], reverse=True)
    return elements


_SCIM_EQUALS = re.compile(r'^\s*(\w+)\s+eq\s+"([^"]*)"\s*$')


def _matches_scim_filter(element: dict, scim_filter) -> bool:
    """An identity domain list's SCIM filter; the double knows `attribute eq "value"`, which for a
    case-insensitive attribute such as a group's displayName compares without case (SCIM, RFC 7644 3.4.2.2)."""
    if not scim_filter:
        return True
    match = _SCIM_EQUALS.match(scim_filter)
    if not match:
        raise ValueError(f"the provider double knows only `attribute eq \"value\"` SCIM filters, not {scim_filter!r}")
    attribute = re.sub(r"(?<!^)([A-Z])", r"_\1", match.group(1)).lower()  # displayName -> display_name
    return str(element.get(attribute, "")).lower() == match.group(2).lower()


def _answer_for(fixture: dict, config: dict) -> dict:
    """A fixture's `x_per_argument` answers ({argument: {value: fields}}, our own key) laid over its
    default answer for the value the data source asks about, e.g. one subnet's range by its OCID."""
    answer = {k: v for k, v in fixture.items() if k != "x_per_argument"}
    for argument, answers in (fixture.get("x_per_argument") or {}).items():
        answer.update(answers.get(config.get(argument), {}))
    return answer


def answer_data_source(type_name: str, block: dict, config: dict, fixture: dict) -> dict:
    """The state a data source read returns: fixture values (filtered like the API) + fakes."""
    state = mark_computed_unknown(block, config)
    fixture = _answer_for(fixture, config)
    scim_filter = next((config.get(k) for k in config if k.endswith("_filter") and type_name.startswith(
        "oci_identity_domains_")), None)
    for name, value in _substitute(deepcopy(fixture), config).items():
        attr = block.get("attributes", {}).get(name)
        if not attr or state.get(name) is not Unknown:
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value = [e for e in value if _matches_arguments(e, config, block)]
            value = [e for e in value if _matches_filters(e, config.get("filter"))]
            value = [e for e in value if _matches_scim_filter(e, scim_filter)]
            value = _sorted_newest_first(value)
        state[name] = _conform(attr["type"], value)
    seed = config_digest(config)
    state = Faker(type_name, seed).fill(block, state)
    if state.get("id") is None:
        state["id"] = f"{type_name}-{seed[:12]}"
    return state
