"""The tfplugin6 Provider service of the double, and its entry point.

Terraform runs the launcher in the filesystem mirror (see ../mirror.py), which calls `main()`.
The PyPI package `tf` does the go-plugin handshake, TLS and the gRPC server.
"""
import json
import os

from tf.gen import tfplugin_pb2 as pb
from tf.gen import tfplugin_pb2_grpc as rpc
from tf.utils import read_dynamic_value, to_dynamic_value

from .. import plugin
from ..objectstore import ENV_VAR as OBJECT_STORE_ENV
from ..objectstore import BucketNotEmpty, NoSuchBucket, ObjectStore
from . import customize_diff, db_systems, planning, propagation
from .fakes import Faker, answer_data_source, config_digest, load_fixtures
from .schema import PROVIDER_ADDR, load_provider_schema, schema_to_pb


def _attribute_path(name: str) -> pb.AttributePath:
    return pb.AttributePath(steps=[pb.AttributePath.Step(attribute_name=name)])


def _error(summary: str) -> pb.Diagnostic:
    return pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=summary)


def home_region(fixtures: dict) -> tuple[str, str] | None:
    """(name, key) of the tenancy's home region: the region subscription marked is_home_region."""
    for subscription in fixtures.get("oci_identity_region_subscriptions", {}).get("region_subscriptions", []):
        if subscription.get("is_home_region"):
            return subscription["region_name"], subscription["region_key"]
    return None


class OciDouble(rpc.ProviderServicer):
    def __init__(self, schema: dict | None = None, fixtures: dict | None = None):
        self.schema = schema or load_provider_schema()
        self.fixtures = fixtures if fixtures is not None else load_fixtures()
        self._schema_response = None
        self.region = None  # the configured provider's region (ConfigureProvider)
        store = os.environ.get(OBJECT_STORE_ENV)
        self.object_store = ObjectStore(store) if store else None
        trace = os.environ.get("OCI_DOUBLE_TRACE")
        self._trace_file = open(trace, "a") if trace else None

    def _trace(self, call: str, **fields):
        if self._trace_file:
            self._trace_file.write(json.dumps({"call": call, **fields}, default=str) + "\n")
            self._trace_file.flush()

    def _resource(self, type_name: str) -> dict:
        return self.schema["resource_schemas"][type_name]["block"]

    def _data_source(self, type_name: str) -> dict:
        return self.schema["data_source_schemas"][type_name]["block"]

    # --- schema and configuration: Terraform core validates config against the schema itself
    def GetMetadata(self, request, context):
        return pb.GetMetadata.Response(
            server_capabilities=pb.ServerCapabilities(plan_destroy=True),
            resources=[pb.GetMetadata.ResourceMetadata(type_name=t) for t in self.schema["resource_schemas"]],
            data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=t) for t in self.schema["data_source_schemas"]],
        )

    def GetProviderSchema(self, request, context):
        if self._schema_response is None:
            self._schema_response = pb.GetProviderSchema.Response(
                provider=schema_to_pb(self.schema["provider"]),
                resource_schemas={t: schema_to_pb(s) for t, s in self.schema["resource_schemas"].items()},
                data_source_schemas={t: schema_to_pb(s) for t, s in self.schema["data_source_schemas"].items()},
                server_capabilities=pb.ServerCapabilities(plan_destroy=True),
            )
        return self._schema_response

    def ValidateProviderConfig(self, request, context):
        return pb.ValidateProviderConfig.Response()

    def ValidateResourceConfig(self, request, context):
        return pb.ValidateResourceConfig.Response()

    def ValidateDataResourceConfig(self, request, context):
        return pb.ValidateDataResourceConfig.Response()

    def ConfigureProvider(self, request, context):
        config = read_dynamic_value(request.config) or {}
        self.region = config.get("region")
        self._trace("configure", region=self.region)
        return pb.ConfigureProvider.Response()

    def _identity_write_refused(self, type_name: str) -> pb.Diagnostic | None:
        """IAM accepts writes only through the home region's endpoint, and the provider does not
        redirect them: a create, update or delete sent to another region answers 403 NotAllowed."""
        home = home_region(self.fixtures)
        region = self.region
        if not type_name.startswith("oci_identity_") or home is None or region in (None, home[0]):
            return None
        return _error(f"403-NotAllowed, Please go to your home region {home[1]} to execute CREATE, UPDATE and "
                      f"DELETE operations.\nRequest Target: POST https://identity.{region}.oci.oraclecloud.com"
                      f"/20160918 ({type_name})")

    def UpgradeResourceState(self, request, context):
        state = json.loads(request.raw_state.json) if request.raw_state.json else None
        if state is not None:  # state written by an older schema may lack keys
            state = Faker(request.type_name, "").fill(self._resource(request.type_name), state)
        return pb.UpgradeResourceState.Response(upgraded_state=to_dynamic_value(state))

    # --- managed resources
    def ReadResource(self, request, context):
        return pb.ReadResource.Response(new_state=request.current_state, private=request.private)

    def PlanResourceChange(self, request, context):
        block = self._resource(request.type_name)
        prior = read_dynamic_value(request.prior_state)
        proposed = read_dynamic_value(request.proposed_new_state)
        self._trace("plan", type=request.type_name, create=prior is None, destroy=proposed is None)
        if proposed is None:
            return pb.PlanResourceChange.Response(planned_state=to_dynamic_value(None))
        replace = []
        legacy = False
        if prior is None:
            planned = planning.mark_computed_unknown(block, proposed)
        else:
            kept = planning.keep_prior_computed(block, proposed, prior)
            # SDKv2 providers answer with the legacy type system, which lets Terraform accept a computed block
            # the configuration leaves out; the double says so only when it keeps one, so every other plan is
            # still checked strictly.
            legacy = planning.kept_computed_block(block, proposed, kept)
            planned = planning.mark_computed_unknown(block, kept)
            replace = planning.replace_reasons(block, prior, planned)
            replace += [r for r in customize_diff.replace_reasons(request.type_name, prior, planned) if r not in replace]
            if replace:
                planned = planning.mark_computed_unknown(block, planning.forget_computed(block, proposed))
        return pb.PlanResourceChange.Response(
            planned_state=to_dynamic_value(planned),
            requires_replace=[_attribute_path(name) for name in replace],
            legacy_type_system=legacy,
        )

    def ApplyResourceChange(self, request, context):
        refused = self._identity_write_refused(request.type_name)
        if refused:
            self._trace("refused", type=request.type_name, region=self.region)
            return pb.ApplyResourceChange.Response(diagnostics=[refused])
        planned = read_dynamic_value(request.planned_state)
        if planned is None:
            prior = read_dynamic_value(request.prior_state)
            refused = self._bucket_delete_refused(request.type_name, prior) or _active_app_delete_refused(
                request.type_name, prior)
            if refused:
                return pb.ApplyResourceChange.Response(diagnostics=[refused], new_state=request.prior_state)
            if request.type_name == db_systems.RESOURCE:
                db_systems.deleted(prior)
            self._trace("delete", type=request.type_name)
            return pb.ApplyResourceChange.Response(new_state=to_dynamic_value(None))
        config = read_dynamic_value(request.config) or {}
        too_soon = propagation.refused(request.type_name, config)
        if too_soon:
            self._trace("refused", type=request.type_name, reason=too_soon)
            return pb.ApplyResourceChange.Response(diagnostics=[_error(too_soon)], new_state=request.prior_state)
        faker = Faker(request.type_name, config_digest(config), self.region)
        new_state = faker.fill(self._resource(request.type_name), planned)
        if request.type_name == "oci_core_instance":
            # a VM launched with a chosen private IP has that address, as the Launch Instance API does
            chosen = ((new_state.get("create_vnic_details") or [{}])[0] or {}).get("private_ip")
            if chosen:
                new_state["private_ip"] = chosen
        if request.type_name == db_systems.RESOURCE:
            new_state = db_systems.with_endpoint(new_state)
        if request.type_name == "oci_containerengine_cluster" and not new_state.get("endpoints"):
            new_state["endpoints"] = [_cluster_endpoints(new_state, config_digest(config))]
        if request.type_name == "oci_objectstorage_preauthrequest":
            new_state = self._with_par_paths(new_state)
        if request.type_name == "oci_objectstorage_object_lifecycle_policy":
            new_state["id"] = f"n/{new_state['namespace']}/b/{new_state['bucket']}/l"  # the provider's composite id
        self._trace("apply", type=request.type_name, id=new_state.get("id"))
        propagation.record(request.type_name, new_state)
        if request.type_name == db_systems.RESOURCE:
            db_systems.record(new_state)
        failed = self._object_storage_write(request.type_name, new_state)
        if failed:
            return pb.ApplyResourceChange.Response(diagnostics=[failed])
        return pb.ApplyResourceChange.Response(new_state=to_dynamic_value(new_state))

    def _delete_object(self, prior: dict) -> None:
        namespace, bucket, name = prior["namespace"], prior["bucket"], prior["object"]
        try:
            if prior.get("delete_all_object_versions"):
                for version in self.object_store.versions(namespace, bucket):
                    if version["name"] == name:
                        self.object_store.delete_object(namespace, bucket, name, version["versionId"])
            else:
                self.object_store.delete_object(namespace, bucket, name)
        except NoSuchBucket:
            pass

    def _with_par_paths(self, state: dict) -> dict:
        """A pre-authenticated request's path and full URL, shaped as Object Storage gives them."""
        if state.get("access_uri", "").startswith("fake-"):
            token = state["id"].rsplit(".", 1)[-1]
            state["access_uri"] = f"/p/{token}/n/{state['namespace']}/b/{state['bucket']}/o/{state['object_name']}"
            state["full_path"] = f"https://objectstorage.{self.region or 'us-ashburn-1'}.oraclecloud.com" \
                                 + state["access_uri"]
        return state

    def _object_storage_write(self, type_name: str, state: dict) -> pb.Diagnostic | None:
        """Buckets and objects Terraform writes go into the shared object store."""
        if not self.object_store:
            return None
        if type_name == "oci_objectstorage_bucket":
            self.object_store.create_bucket(state["namespace"], state["name"],
                                            versioning=state.get("versioning") == "Enabled")
        elif type_name == "oci_objectstorage_object":
            try:
                self.object_store.put(state["namespace"], state["bucket"], state["object"],
                                      len((state.get("content") or "").encode()))
            except NoSuchBucket:
                return _error(f"404-BucketNotFound, Either the bucket named '{state['bucket']}' does not exist in "
                              f"the namespace '{state['namespace']}' or you are not authorized to access it")
        return None

    def _bucket_delete_refused(self, type_name: str, prior: dict | None) -> pb.Diagnostic | None:
        """DeleteBucket answers 409 BucketNotEmpty while the bucket holds any object version; the
        provider has no way to empty it first. (Deleting an object resource deletes the object; in a
        versioned bucket its versions stay unless delete_all_object_versions is set.)"""
        if type_name == "oci_objectstorage_object" and self.object_store and prior:
            self._delete_object(prior)
            return None
        if type_name != "oci_objectstorage_bucket" or not self.object_store or not prior:
            return None
        try:
            self.object_store.delete_bucket(prior["namespace"], prior["name"])
        except BucketNotEmpty as exc:
            self._trace("refused", type=type_name, bucket=prior["name"])
            return _error(str(exc))
        return None

    def ImportResourceState(self, request, context):
        return pb.ImportResourceState.Response(diagnostics=[_error("the oci provider double cannot import")])

    # --- data sources
    def ReadDataSource(self, request, context):
        block = self._data_source(request.type_name)
        config = read_dynamic_value(request.config)
        fixture = self.fixtures.get(request.type_name, {})
        if request.type_name == db_systems.DATA_SOURCE:  # what the double created, beside any fixture's
            fixture = {**fixture, "db_systems": fixture.get("db_systems", []) + db_systems.listed()}
        state = answer_data_source(request.type_name, block, config, fixture)
        self._trace("read", type=request.type_name)
        return pb.ReadDataSource.Response(state=to_dynamic_value(state))

    def StopProvider(self, request, context):
        return pb.StopProvider.Response()

    def GetFunctions(self, request, context):
        return pb.GetFunctions.Response()


def main(argv=None):
    plugin.serve(OciDouble(), PROVIDER_ADDR, argv)


def _active_app_delete_refused(type_name: str, prior: dict | None) -> pb.Diagnostic | None:
    """An identity domain deletes an application only once it is deactivated, unless the delete is forced
    (the provider's `force_delete`, the API's forceDelete)."""
    if type_name != "oci_identity_domains_app" or not prior or not prior.get("active") or prior.get("force_delete"):
        return None
    return _error(f"400-BadRequest, the application {prior.get('display_name')} is active: deactivate it before "
                  "deleting it, or delete it with force_delete = true")


def _cluster_endpoints(cluster: dict, seed: str) -> dict:
    """The Kubernetes API addresses a cluster gets (the Cluster model's `endpoints`): a private one in its
    endpoint subnet, and a public one only when the endpoint config asks for a public IP."""
    public = ((cluster.get("endpoint_config") or [{}])[0] or {}).get("is_public_ip_enabled")
    host = int(seed[:2], 16) % 250 + 2
    return {"kubernetes": "", "ipv6endpoint": "", "vcn_hostname_endpoint": "",
            "private_endpoint": f"10.0.4.{host}:6443",
            "public_endpoint": f"203.0.113.{host}:6443" if public else ""}
