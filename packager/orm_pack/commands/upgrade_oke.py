"""`orm-pack upgrade` on a stack with deployment_target = oke: its options, and the OKE runtime
(orm_pack.oke.upgrade_runtime) made from the stack's outputs, as `orm-pack oke deploy` makes its cluster access."""
from __future__ import annotations

from orm_pack.commands.oke import add_cluster_access, kube_for
from orm_pack.deploy import workflows
from orm_pack.errors import ExitCode, UserError
from orm_pack.oke import admin_password, kubectl, manifests, settings
from orm_pack.oke.upgrade_runtime import OkeRuntime
from orm_pack.stack import archive, images

OKE_TIMEOUT_SECONDS = 900


def add_arguments(parser) -> None:
    group = parser.add_argument_group("on OKE (deployment_target = oke)")
    group.add_argument("--image", metavar="IMAGE", help="the target version's tracking image (default: this "
                       "release's in the stack's container_registry)")
    add_cluster_access(group)
    group.add_argument("--secrets-endpoint", metavar="URL", help="Vault secret retrieval endpoint URL (the MySQL "
                       "administrator's password, read with your key, for the plan and migrate Jobs)")
    group.add_argument("--oke-timeout", type=float, default=OKE_TIMEOUT_SECONDS, metavar="SECONDS",
                       help=f"longest wait for a Job or a rollout (default {OKE_TIMEOUT_SECONDS:.0f})")


def _oke_dir(args):
    """oke/ of this release: beside the stack's source, else the checkout's or the bundled one."""
    source = archive.find_source(args.source)
    return source / "oke" if (source / "oke").is_dir() else archive.find_source(None) / "oke"


def runtime_factory(session):
    """outputs -> OkeRuntime for the stack's cluster."""
    args = session.args
    artifact, given = args.stack_inputs

    def latest_settings(image: str | None) -> settings.DeploySettings:
        result = workflows.outputs(session.rm, args.compartment, args.stack_name, None)
        raw = {o.name: o.value for o in result.outputs}.get(settings.OUTPUT)
        return settings.from_output(raw, image)

    def make(outputs: dict) -> OkeRuntime:
        if args.oke_timeout <= 0:
            raise UserError("--oke-timeout must be positive", ExitCode.USAGE)
        first = settings.from_output(outputs.get(settings.OUTPUT), None)
        binary = kubectl.find(args.kubectl)
        kube = kube_for(args, session, first, binary)
        oke_dir = _oke_dir(args)
        password: list[str] = []

        def documents(image: str | None) -> list[dict]:
            return manifests.render(oke_dir, latest_settings(image), binary)[1]

        def admin() -> str:
            if not password:
                password.append(admin_password.read(session.context, first.admin_password_secret_ocid,
                                                    args.secrets_endpoint))
            return password[0]

        def image_for(version: str) -> str:
            if args.image:
                return args.image
            declared = artifact.declared.get("container_registry")
            variables = {"container_registry": declared.default if declared else "",
                         **session.rm.find_stack(args.compartment, args.stack_name).variables, **given}
            return images.tracking_image(artifact.data, variables["container_registry"] or "", version,
                                         str(artifact.declared["mlflow_version"].default))

        say = lambda line: session.err.print(line, markup=False, highlight=False)  # noqa: E731
        return OkeRuntime(kube, documents, admin, image_for, args.oke_timeout, say)
    return make
