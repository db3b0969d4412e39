"""OCIDs as OCI mints them: the CLI's one pattern and the runtime's one pattern read every real shape,
and the tests' minter (harness/ocids.py) gives each type the shape OCI gives it.

Syntax, from OCI's documentation ("Resource Identifiers",
https://docs.oracle.com/en-us/iaas/Content/General/Concepts/identifiers.htm):
`ocid1.<RESOURCE TYPE>.<REALM>.[REGION][.FUTURE USE].<UNIQUE ID>`; the region is blank for resources
that have none, short (iad, phx) for the first regions and the region's name after them. Vaults and
keys fill the "future use" part with the vault's 13-character prefix, a key version with two parts.
Every example below was minted by OCI: copied from Oracle's documentation, from API responses recorded
in Oracle's own SDK and CLI test suites ("cassettes"), or from Oracle's examples and integration tests.
"""
import importlib.util
import re
from pathlib import Path

import pytest

from harness import ocids as minter
from orm_pack.cloud import ocids as cli_ocids
from orm_pack.errors import UserError

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("runtime_ocids", REPO / "docker" / "lib" / "mlflow_oci" / "ocids.py")
runtime_ocids = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runtime_ocids)

CLI = "oracle/oci-cli"
PY_SDK = "oracle/oci-python-sdk"
PROVIDER = "oracle/terraform-provider-oci"
# (type, OCID, where it was published)
REAL_OCIDS = [
    ("vault", "ocid1.vault.oc1.iad.b5rzxbu2aaa66.abuwcljtidud4mzdfmsnzp6nsav2cn7vofupioxoqb2vumakmaubq4iprxba",
     "docs.oracle.com, Key Management, \"Getting a Vault's Details\" (CLI example)"),
    ("vault", "ocid1.vault.oc1.phx.avnybakjaafna.abyhqljswc5wb7nn6pdehcvzn7s2r5yfwanl2nr6x64bny55rq3ofrdg3e7q",
     f"{CLI} v2.5.13 services/key_management/tests/cassettes/for_generated/key_management_test_cancel_vault_deletion.yml"),
    ("vault", "ocid1.vault.oc1.iad.bbo7h3seaaeug.abuwcljskeh5tco23lpk5hkijjrlrj64q5afzz3qbe25ku3b4n5ozn66qr5a",
     f"{PROVIDER} v3.61.0 oci/kms_key_resource_test.go"),
    ("key", "ocid1.key.oc1.phx.avnybakjaafna.abyhqljtdla2rxmovbosrxj3dcxi6aezujidtfn6eexc423hwwx6fcznfrta",
     f"{CLI} v2.5.13 services/key_management/tests/cassettes/for_generated/key_management_test_create_key.yml"),
    ("key", "ocid1.key.oc1.iad.annm5ag4aacuu.abuwcljt3b3cf6uje7ki7bb42hzp5nfjp3rhr57bilkk2cc65lpe4eqizjoq",
     f"{CLI} v2.5.13 services/core/tests/cassettes/for_generated/core_test_create_boot_volume.yml"),
    ("keyversion",
     "ocid1.keyversion.oc1.phx.avnybakjaafna.ard2ltfamvaaa.abyhqljt2htgeyyborvbudagf5biqaabvhzp37kssqrm7apgzfo7o4h6cfna",
     f"{CLI} v2.5.13 services/key_management/tests/cassettes/for_generated/key_management_test_create_key.yml"),
    ("vaultsecret", "ocid1.vaultsecret.oc1.iad.amaaaaaagpihjxqadwyc4kjhpeis2bylhzmp5r2si6mz2h4eujevnmf3zoca",
     "docs.oracle.com, .NET SDK API reference, ApmsyntheticsService.Models.PasswordInVault (example)"),
    ("vaultsecret", "ocid1.vaultsecret.oc1.ap-hyderabad-1.amaaaaaacsc5xjaa2q7r6kfzdm44ylxqwomht6uinb5zyhezka7sl2t62ecq",
     f"{PROVIDER} v4.80.0 examples/database/db_database_management/resources.tf"),
    ("tenancy", "ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f44n2b2m2yt2j6rx32uzr4h25vqstifsfdsq",
     "docs.oracle.com, \"Resource Identifiers\" (example tenancy ID)"),
    ("compartment", "ocid1.compartment.oc1..aaaaaaaaoqv2smvc4kii7uudwyuqgh6mkocmbe5nvtn2yd2krfwwmh3c5mza",
     f"{CLI} services/data_safe/tests/integ/test_data_safe_pe.py"),
    ("user", "ocid1.user.oc1..aaaaaaaarbxpiy5bu5g6cuqdfvwibbltec24d7ddqkznliuazjosdl27nyda",
     f"{CLI} services/object_storage/tests/objectstorage_cassettes/object_list_test_os_object_list.yml"),
    ("dynamicgroup", "ocid1.dynamicgroup.oc1..aaaaaaaatqbpurg4jtr57dthka4lbykvsqajjmynecixwgsfgu2z36wf4kgq",
     f"{PROVIDER} examples/logging/log_agent_configuration/log_agent_configuration.tf"),
    ("policy", "ocid1.policy.oc1..aaaaaaaa3poi4cvzbssys4rdohyk5pbp2dzmzudc7v3gk37ghkdawdg6y7eq",
     f"{CLI} v2.5.13 services/identity/tests/cassettes/for_generated/identity_test_get_policy.yml"),
    ("tagnamespace", "ocid1.tagnamespace.oc1..aaaaaaaaow2fsgrbuyh25b7d45szh2r6cpublbyfjpozgujegpnd3x7nxgaa",
     f"{CLI} v2.5.13 services/identity/tests/cassettes/for_generated/identity_test_get_tag_namespace.yml"),
    ("domain", "ocid1.domain.oc1..aaaaaaaanjdr33uufgat3t7mftmfo6qeggs3mgu43whydson2eeqtqoijaxq",
     f"{PROVIDER} v5.4.0 internal/integrationtest/identity_domains_test_helpers.go"),
    ("instance", "ocid1.instance.oc1.phx.abuw4ljrlsfiqw6vzzxb43vyypt4pkodawglp3wqxjqofakrwvou52gb6s5a",
     "docs.oracle.com, \"Resource Identifiers\" (example instance ID)"),
    ("instance", "ocid1.instance.oc1.phx.anyhqljrogrv47ic3jqywezzxz5bvuecwtoes5unufcblsvcaqwy263hnd2q",
     f"{CLI} tests/interactive/cassettes/interactive_cli_test_resource_completion.yml"),
    ("image", "ocid1.image.oc1.phx.aaaaaaaa53cliasgvqmutflwqkafbro2y4ywjebci5szc4eus5byy2e2b7ua",
     f"{CLI} tests/util.py"),
    ("image", "ocid1.image.oc2.us-langley-1.aaaaaaaajaq7kmorgojrfrry74iu536mh5x3yy7atnvtovlkbnj2352e3koa",
     "oracle-quickstart/oci-ansible-awx variable.image_oraclelinux_7.tf (Government Cloud realm)"),
    ("subnet", "ocid1.subnet.oc1.iad.aaaaaaaa7uaacvuaooovyym734ckungwjhrxcpt4uahqgjotl5llb3c32goq",
     f"{PY_SDK} examples/showoci/README.md"),
    ("vcn", "ocid1.vcn.oc1.iad.aaaaaaaao2fz5lgsvyph2egdljbcb34p4ifsswl3hsiwbepczkq4rzornzgq",
     f"{PY_SDK} examples/showoci/README.md"),
    ("networksecuritygroup",
     "ocid1.networksecuritygroup.oc1.iad.aaaaaaaavs2fnryhitdrzysb6lyy6mxmrqjcib7qvckqjufrkf47tgu4bcpa",
     f"{PY_SDK} examples/showoci/README.md"),
    ("publicip", "ocid1.publicip.oc1.phx.aaaaaaaakdwm2e3gk2jdz6rnl527axrfc7wu2gtimccpfkse5c7gbi2wdnja",
     f"{CLI} v2.5.13 services/core/tests/cassettes/for_generated/core_test_create_public_ip.yml"),
    ("mysqldbsystem", "ocid1.mysqldbsystem.oc1.iad.aaaaaaaaehqzqna7roir6rzeqklv5hqrxkweaernbim46mv2fbjywfqyijta",
     "mysql/mysql-shell-plugins gui/frontend/src/tests/e2e/migration_assistant/mocks/response_work_status_abort.json"),
    ("bucket", "ocid1.bucket.oc1.iad.aaaaaaaaifjcznjpeydyf4brkhwh6ckogn6yhlbo37uc4mfhkeoxifjvveeq",
     f"{CLI} services/object_storage/tests/objectstorage_cassettes/"
     "object_storage_bulk_operations_test_basic_bulk_delete_versions_object_name.yml"),
    ("cluster", "ocid1.cluster.oc1.iad.aaaaaaaaxf62ez6wa75gd3bg4ntf2x2knn7m6u4n7kgrrzfsocelgugbbd7q",
     f"{CLI} services/devops/tests/integ/test_devops_deploy.py"),
    ("nodepool", "ocid1.nodepool.oc1.iad.aaaaaaaaafrtqntfmrrwkmrtg44tomddg5tdsobtgazdamddmnztazjvgi3t",
     f"{CLI} v2.5.13 services/container_engine/tests/cassettes/for_generated/container_engine_test_get_node_pool.yml"),
    ("ormstack", "ocid1.ormstack.oc1.phx.aaaaaaaa622fvlsuqbagptyvqwvea5fzsw57267aoeezbc7expxwyqehui3q",
     f"{CLI} services/resource_manager/tests/integ/test_resource_manager_copy_stack.py"),
    ("ormjob", "ocid1.ormjob.oc1.phx.aaaaaaaapgn6mmbr2u2ecppspei5go4m6zacv7vbilfpim7qxegr2w3mgyaa",
     f"{CLI} services/resource_manager/tests/integ/test_resource_manager_get_job_logs.py"),
    ("managementdashboard", "ocid1.managementdashboard.oc1..aaaaaaaa7j4g7txns3w533cz2dzinbg3h5hrpeln2cau3wr34e4my6d35yfa",
     "oracle-quickstart/oci-observability-and-management examples/genai-inference-app-monitoring/inferencing-apps.json"),
    ("managementsavedsearch",
     "ocid1.managementsavedsearch.oc1..aaaaaaaau32lw2am64syui7xfdnmiufrv4x7taitbc23d4roxuautycckmfq",
     "oracle-quickstart/oci-observability-and-management examples/genai-inference-app-monitoring/inferencing-apps.json"),
    ("datasciencenotebooksession",
     "ocid1.datasciencenotebooksession.oc1.iad.amaaaaaav66vvniaiasz7njfotab2z7i6yvnk4tnbaamqqc7g45tvme3doyq",
     f"{PROVIDER} internal/integrationtest/datascience_model_provenance_test.go"),
]
# Not OCIDs, or not of any type: a path, a typo, a value pasted with a space or a newline.
NOT_OCIDS = ["", "ocid1.vault", "ocid1.vault.oc1.iad.x/../y", "ocid1.vault.oc1.iad.abc def",
             "OCID1.VAULT.OC1.IAD.AAAA.BBBB", "ocid1.vault.oc1.iad.aaaa\n", "ocid1..oc1..aaaa", "ocid2.vault.oc1.iad.a.b"]
SHORT_REGIONS = {"iad": "us-ashburn-1", "phx": "us-phoenix-1"}
BASE32_60 = re.compile(r"[a-z2-7]{60}")

ids = [f"{kind}-{i}" for i, (kind, _, _) in enumerate(REAL_OCIDS)]


@pytest.mark.parametrize("kind, ocid, source", REAL_OCIDS, ids=ids)
def test_the_cli_reads_every_real_ocid_as_its_type(kind, ocid, source):
    assert cli_ocids.parse(ocid).type == kind, source
    assert cli_ocids.check(ocid, (kind,), "--x") == ocid
    other = "vault" if kind != "vault" else "key"
    with pytest.raises(UserError, match=f"is the OCID of a {kind}, not of a {other}"):
        cli_ocids.check(ocid, (other,), "--x")


@pytest.mark.parametrize("kind, ocid, source", REAL_OCIDS, ids=ids)
def test_the_runtime_reads_every_real_ocid_as_its_type(kind, ocid, source):
    assert runtime_ocids.is_ocid(ocid, kind), source
    assert not runtime_ocids.is_ocid(ocid, "vaultsecret" if kind != "vaultsecret" else "vault")


@pytest.mark.parametrize("value", NOT_OCIDS)
def test_what_is_not_an_ocid_is_refused_on_both_sides(value):
    assert cli_ocids.parse(value) is None
    assert not any(runtime_ocids.is_ocid(value, kind) for kind in ("vault", "key", "vaultsecret", ""))


@pytest.mark.parametrize("kind, ocid, source", REAL_OCIDS, ids=ids)
def test_the_fakes_mint_each_type_in_the_shape_oci_gives_it(kind, ocid, source):
    """The same number of parts, the region blank exactly where OCI leaves it blank, short only for
    Ashburn and Phoenix, and a 60-character base32 unique part."""
    real = ocid.split(".")
    region = SHORT_REGIONS.get(real[3], real[3])
    fake = minter.mint(kind, "a seed", region=region or "eu-frankfurt-1", realm=real[2]).split(".")
    assert (len(fake), fake[:4]) == (len(real), real[:4]), f"{'.'.join(fake)} is not shaped like {ocid} ({source})"
    assert BASE32_60.fullmatch(fake[-1]) and BASE32_60.fullmatch(real[-1])
    assert all(len(part) == len(real_part) for part, real_part in zip(fake[4:-1], real[4:-1], strict=True))


def test_a_real_vault_needs_the_pattern_that_reads_six_parts():
    """The shape the runtime first read vaults with (five parts) refused every real vault, so single
    sign-on never started on OCI; the tests' vaults looked like it (ocid1.vault.oc1.iad.fakevaultaaaa)."""
    five_parts = re.compile(r"^ocid1\.vault\.[a-z0-9-]+\.[a-z0-9-]*\.[a-z0-9]+$")
    vaults = [ocid for kind, ocid, _ in REAL_OCIDS if kind == "vault"]
    assert vaults and not any(five_parts.match(v) for v in vaults)
    assert all(runtime_ocids.is_ocid(v, "vault") for v in vaults)
    assert all(len(minter.mint("vault", seed).split(".")) == 6 for seed in ("a", "b"))


def test_no_ocid_written_in_the_tests_has_a_shape_oci_never_mints():
    """Every OCID the fakes, fixtures, inventories and tests write out is shaped like its type's (this
    file's own table of refused values aside, and README's placeholders, which tests find in README)."""
    tests = REPO / "tests"
    placeholders = set(minter.literals_in((REPO / "README.md").read_text()))
    assert placeholders == {"ocid1.compartment.oc1..xxxx"}
    wrong = []
    for path in sorted(tests.rglob("*")):
        if path.suffix not in (".py", ".yaml", ".yml", ".json", ".tf") or path == Path(__file__) \
                or "schema" in path.relative_to(tests).parts or not path.is_file():
            continue
        for ocid in minter.literals_in(path.read_text()):
            problem = None if ocid in placeholders else minter.shape_problem(ocid)
            if problem:
                wrong.append(f"{path.relative_to(REPO)}: {ocid}: {problem}")
    assert wrong == []
    assert minter.shape_problem("ocid1.vault.oc1.iad.fakevaultaaaa") == "5 parts, a vault OCID has 6"
    assert minter.shape_problem("ocid1.instance.oc1..aaaa") is not None
