"""A double of the hashicorp/time provider's `time_sleep`, served beside the oci double.

Resource Manager fetches hashicorp/time from the Terraform Registry; this machine cannot. The double
serves the resource's schema as the provider documents it (create_duration, destroy_duration, triggers
forcing a new sleep, a computed id) and sleeps for real, scaled by OCI_DOUBLE_TIME_SCALE: the oci double
scales the cloud's propagation delays by the same factor (double/propagation.py), so a wait the stack
declares covers the delay in the tests exactly as it does against OCI, only faster.
"""
import json
import os
import re
import time
from datetime import datetime, timezone

from tf.gen import tfplugin_pb2 as pb
from tf.gen import tfplugin_pb2_grpc as rpc
from tf.types import Unknown
from tf.utils import read_dynamic_value, to_dynamic_value

from . import plugin
from .double.propagation import SCALE_ENV
from .double.schema import schema_to_pb

PROVIDER_ADDR = "registry.terraform.io/hashicorp/time"
PROVIDER_VERSION = "0.13.1"
SLEEP_SCHEMA = {"version": 0, "block": {"attributes": {
    "create_duration": {"type": "string", "optional": True},
    "destroy_duration": {"type": "string", "optional": True},
    "triggers": {"type": ["map", "string"], "optional": True},
    "id": {"type": "string", "computed": True},
}}}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}


def scale() -> float:
    return float(os.environ.get(SCALE_ENV, "1"))


def seconds(duration: str | None) -> float:
    """A Go duration as time_sleep takes it ("30s", "1m30s") in seconds; ValueError when it is not one."""
    if not duration:
        return 0.0
    if not re.fullmatch(r"(\d+(?:\.\d+)?(h|m|s|ms))+", duration):
        raise ValueError(f"{duration!r} is not a duration such as 30s or 1m")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(duration))


def _error(summary: str) -> pb.Diagnostic:
    return pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=summary)


class TimeDouble(rpc.ProviderServicer):
    def GetMetadata(self, request, context):
        return pb.GetMetadata.Response(server_capabilities=pb.ServerCapabilities(plan_destroy=True),
                                       resources=[pb.GetMetadata.ResourceMetadata(type_name="time_sleep")])

    def GetProviderSchema(self, request, context):
        return pb.GetProviderSchema.Response(
            provider=schema_to_pb({"version": 0, "block": {}}),
            resource_schemas={"time_sleep": schema_to_pb(SLEEP_SCHEMA)},
            server_capabilities=pb.ServerCapabilities(plan_destroy=True))

    def ValidateProviderConfig(self, request, context):
        return pb.ValidateProviderConfig.Response()

    def ValidateResourceConfig(self, request, context):
        config = read_dynamic_value(request.config) or {}
        for name in ("create_duration", "destroy_duration"):
            value = config.get(name)
            if isinstance(value, str):
                try:
                    seconds(value)
                except ValueError as exc:
                    return pb.ValidateResourceConfig.Response(diagnostics=[_error(f"{name}: {exc}")])
        return pb.ValidateResourceConfig.Response()

    def ConfigureProvider(self, request, context):
        return pb.ConfigureProvider.Response()

    def UpgradeResourceState(self, request, context):
        state = json.loads(request.raw_state.json) if request.raw_state.json else None
        return pb.UpgradeResourceState.Response(upgraded_state=to_dynamic_value(state))

    def ReadResource(self, request, context):
        return pb.ReadResource.Response(new_state=request.current_state, private=request.private)

    def PlanResourceChange(self, request, context):
        prior = read_dynamic_value(request.prior_state)
        proposed = read_dynamic_value(request.proposed_new_state)
        if proposed is None:
            return pb.PlanResourceChange.Response(planned_state=to_dynamic_value(None))
        planned = dict(proposed)
        replace = []
        if prior is None:
            planned["id"] = Unknown
        elif (prior.get("triggers") or None) != (proposed.get("triggers") or None):
            planned["id"] = Unknown  # triggers force a new sleep (RequiresReplace)
            replace = [pb.AttributePath(steps=[pb.AttributePath.Step(attribute_name="triggers")])]
        else:
            planned["id"] = prior["id"]
        return pb.PlanResourceChange.Response(planned_state=to_dynamic_value(planned), requires_replace=replace)

    def ApplyResourceChange(self, request, context):
        planned = read_dynamic_value(request.planned_state)
        prior = read_dynamic_value(request.prior_state)
        if planned is None:
            time.sleep(seconds(prior.get("destroy_duration")) * scale())
            return pb.ApplyResourceChange.Response(new_state=to_dynamic_value(None))
        state = dict(planned)
        if prior is None or state.get("id") is Unknown:
            time.sleep(seconds(state.get("create_duration")) * scale())
            state["id"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return pb.ApplyResourceChange.Response(new_state=to_dynamic_value(state))

    def ImportResourceState(self, request, context):
        return pb.ImportResourceState.Response(diagnostics=[_error("the time double cannot import")])

    def ValidateDataResourceConfig(self, request, context):
        return pb.ValidateDataResourceConfig.Response()

    def StopProvider(self, request, context):
        return pb.StopProvider.Response()

    def GetFunctions(self, request, context):
        return pb.GetFunctions.Response()


def main(argv=None):
    plugin.serve(TimeDouble(), PROVIDER_ADDR, argv)
