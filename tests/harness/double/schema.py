"""Load the committed schema subset and turn it into tfplugin6 protobuf messages."""
import json
import os
from pathlib import Path

from tf.gen import tfplugin_pb2 as pb

PROVIDER_ADDR = "registry.terraform.io/oracle/oci"
PROVIDER_VERSION = "7.19.0"
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema" / f"oci-{PROVIDER_VERSION}.json"

_NESTING = {
    "single": pb.Schema.NestedBlock.SINGLE,
    "list": pb.Schema.NestedBlock.LIST,
    "set": pb.Schema.NestedBlock.SET,
    "map": pb.Schema.NestedBlock.MAP,
    "group": pb.Schema.NestedBlock.GROUP,
}


def load_provider_schema(path=None) -> dict:
    """The `provider_schemas[oracle/oci]` part of a `terraform providers schema -json` document."""
    path = path or os.environ.get("OCI_DOUBLE_SCHEMA") or SCHEMA_FILE
    return json.loads(Path(path).read_text())["provider_schemas"][PROVIDER_ADDR]


def block_to_pb(block: dict) -> pb.Schema.Block:
    attributes = [
        pb.Schema.Attribute(
            name=name,
            type=json.dumps(attr["type"], separators=(",", ":")).encode(),
            description=attr.get("description", ""),
            required=bool(attr.get("required")),
            optional=bool(attr.get("optional")),
            computed=bool(attr.get("computed")),
            sensitive=bool(attr.get("sensitive")),
            deprecated=bool(attr.get("deprecated")),
            description_kind=pb.PLAIN,
        )
        for name, attr in sorted(block.get("attributes", {}).items())
    ]
    block_types = [
        pb.Schema.NestedBlock(
            type_name=name,
            block=block_to_pb(nested["block"]),
            nesting=_NESTING[nested["nesting_mode"]],
            min_items=nested.get("min_items", 0),
            max_items=nested.get("max_items", 0),
        )
        for name, nested in sorted(block.get("block_types", {}).items())
    ]
    return pb.Schema.Block(attributes=attributes, block_types=block_types, description_kind=pb.PLAIN)


def schema_to_pb(schema: dict) -> pb.Schema:
    return pb.Schema(version=schema.get("version", 0), block=block_to_pb(schema["block"]))
