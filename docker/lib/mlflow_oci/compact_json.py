"""The tracking server's responses as compact JSON.

MLflow's handlers write every response with message_to_json(pretty=True). The indentation makes Python's json
module leave its C encoder for the pure-Python one, and doubles the bytes. The run table's page of 100 runs
(20 metrics, 10 params and 8 tags each) is 530 KB pretty and 263 KB compact, and takes about 50 ms less to
encode (benchmarks/bench_large_data_runs.py). Clients parse the JSON; whitespace is no part of MLflow's API.

The run table's answer (SearchRuns.Response) is also turned into JSON in one pass. MLflow's message_to_json
converts the message with protobuf's json_format (pure Python, int64 as strings), walks it again for the int64
fields and merges the two. That costs about 55 ms for a page of 100 runs. runs_to_json() writes the same text,
field for field and in the same order, from the message's set fields, in about a third of the time. It handles
the few field types of that message's tree (strings, int64, doubles, enums, nested messages, repeated) and
is used only when the tree has no others (no maps and no well-known types), which install() checks.

install() switches mlflow.server.handlers to compact output. The tracking store's builder (tracking_store.py)
calls it in each server worker. MLFLOW_OCI_COMPACT_JSON=false leaves MLflow's output as it is.
"""
import inspect
import json
import math
import sys

from google.protobuf.descriptor import FieldDescriptor

from mlflow_oci import switches

SWITCH = "MLFLOW_OCI_COMPACT_JSON"
_SCALARS = {FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_DOUBLE,
            FieldDescriptor.TYPE_ENUM}


def install() -> bool:
    """True when the server's handlers now write compact JSON."""
    if not switches.on(SWITCH):
        return False
    handlers = sys.modules.get("mlflow.server.handlers")
    if handlers is None:
        return False  # not a tracking server: a client, init_db.py, a script
    current = handlers.message_to_json
    if getattr(current, "installed_by_mlflow_oci", False):
        return True
    if "pretty" not in inspect.signature(current).parameters:
        return False  # an MLflow whose encoder this does not know
    from mlflow.protos.service_pb2 import SearchRuns

    runs_response = SearchRuns.Response if one_pass_covers(SearchRuns.Response.DESCRIPTOR) else None

    def message_to_json(message, *, pretty=True, convert_int64_to_number=True):
        if type(message) is runs_response and convert_int64_to_number:
            return runs_to_json(message)
        return current(message, pretty=False, convert_int64_to_number=convert_int64_to_number)

    message_to_json.installed_by_mlflow_oci = True
    handlers.message_to_json = message_to_json
    return True


def one_pass_covers(descriptor, seen=None) -> bool:
    """Whether every field under this message type is one runs_to_json writes as json_format does."""
    seen = set() if seen is None else seen
    if descriptor.full_name in seen:
        return True
    seen.add(descriptor.full_name)
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            nested = field.message_type
            if nested.GetOptions().map_entry or nested.full_name.startswith("google.protobuf."):
                return False
            if not one_pass_covers(nested, seen):
                return False
        elif field.type not in _SCALARS or field.is_extension:
            return False
    return True


def runs_to_json(message) -> str:
    """MLflow's message_to_json(message, pretty=False) for a message one_pass_covers."""
    return json.dumps(_plain(message), separators=(",", ":"))


def _plain(message) -> dict:
    plain = {}
    for field, value in message.ListFields():
        if field.label == FieldDescriptor.LABEL_REPEATED:
            plain[field.name] = [_value(field, item) for item in value]
        else:
            plain[field.name] = _value(field, value)
    return plain


def _value(field, value):
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        return _plain(value)
    if kind == FieldDescriptor.TYPE_STRING:
        return value
    if kind == FieldDescriptor.TYPE_INT64:
        return value  # MLflow writes int64 as numbers (json_format would quote them)
    if kind == FieldDescriptor.TYPE_DOUBLE:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "-Infinity" if value < 0 else "Infinity"
        return value
    named = field.enum_type.values_by_number.get(value)  # TYPE_ENUM
    return named.name if named is not None else value
