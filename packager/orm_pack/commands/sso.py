"""`orm-pack sso groups-claim`: the identity domain setting single sign-on needs and the stack cannot make.

With mlflow_users = "sso" the tracking server tells MLflow admins from users by the groups in the domain's
tokens; the domain puts them there only once its administrator adds a custom claim (identity_domain.py).
"""
from __future__ import annotations

import sys

from orm_pack.cloud import identity_domain, ociconfig
from orm_pack.commands._shared import add_credential_arguments
from orm_pack.errors import ExitCode, UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser("sso", help="identity domain settings for single sign-on (mlflow_users = sso)")
    commands = parser.add_subparsers(dest="sso_command", metavar="ACTION")
    p = commands.add_parser(
        "groups-claim", help="add the custom claim that puts people's group names into the domain's tokens",
        description="Add, once per identity domain, the custom claim that lists a person's group names in the "
                    "domain's ID and access tokens (a domain-wide setting: run it as an Identity Domain "
                    "Administrator). Does nothing when the domain has it already.")
    p.add_argument("--domain-url", required=True, metavar="URL",
                   help="the identity domain's Domain URL (stack output sso_application.domain_url)")
    p.add_argument("--claim-name", default="groups", metavar="NAME",
                   help="the claim's name; the tracking server reads MLFLOW_OIDC_GROUPS_CLAIM (default groups)")
    p.add_argument("--domain-endpoint", metavar="URL", help="send the requests here instead of the Domain URL")
    add_credential_arguments(p.add_argument_group("OCI authentication (as oci-cli)"))
    p.set_defaults(func=_run_groups_claim)
    parser.set_defaults(func=lambda args: parser.print_help() or ExitCode.USAGE)


def _run_groups_claim(args) -> int:
    try:
        base = identity_domain.domain_base(args.domain_url)
        identity_domain.check_name(args.claim_name)
    except identity_domain.ClaimError as exc:
        raise UserError(str(exc), ExitCode.USAGE) from None
    if args.domain_endpoint:
        ociconfig.check_endpoint(args.domain_endpoint, "--domain-endpoint")
    target = (args.domain_endpoint or base).rstrip("/")
    context = ociconfig.load(ociconfig.AuthOptions(config_file=args.config_file, profile=args.profile, auth=args.auth))
    for warning in context.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    send = identity_domain.signed_sender(context.signer, target)

    try:
        outcome = identity_domain.ensure(send, target, args.claim_name)
    except identity_domain.ClaimError as exc:
        raise UserError(str(exc), ExitCode.FAILURE) from None
    done = "added" if outcome.created else "already has"
    print(f"{base} {done} the custom claim {args.claim_name}: the names of a person's groups "
          f"({identity_domain.GROUP_NAMES}) in its ID and access tokens")
    return 0
