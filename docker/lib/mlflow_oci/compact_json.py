"""The tracking server's responses as compact JSON.

MLflow's handlers write every response with message_to_json(pretty=True). The indentation makes Python's json
module leave its C encoder for the pure-Python one, and doubles the bytes. The run table's page of 100 runs
(20 metrics, 10 params and 8 tags each) is 530 KB pretty and 263 KB compact, and takes about 50 ms less to
encode (benchmarks/bench_large_data_runs.py). Clients parse the JSON; whitespace is no part of MLflow's API.

install() switches mlflow.server.handlers to compact output. The tracking store's builder (tracking_store.py)
calls it in each server worker. MLFLOW_OCI_COMPACT_JSON=false leaves MLflow's output as it is.
"""
import functools
import inspect
import os
import sys

SWITCH = "MLFLOW_OCI_COMPACT_JSON"


def install() -> bool:
    """True when the server's handlers now write compact JSON."""
    if os.environ.get(SWITCH, "true").strip().lower() in ("false", "0", "no", "off"):
        return False
    handlers = sys.modules.get("mlflow.server.handlers")
    if handlers is None:
        return False  # not a tracking server: a client, init_db.py, a script
    current = handlers.message_to_json
    if isinstance(current, functools.partial):
        return True  # installed already
    if "pretty" not in inspect.signature(current).parameters:
        return False  # an MLflow whose encoder this does not know
    handlers.message_to_json = functools.partial(current, pretty=False)
    return True
