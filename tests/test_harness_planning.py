"""The provider double plans a DB system restored from a backup as the provider does: `source` is Optional,
Computed and ForceNew (oracle/terraform-provider-oci, internal/service/mysql/mysql_mysql_db_system_resource.go:
`"source": {Type: schema.TypeList, Optional: true, Computed: true, ForceNew: true, MaxItems: 1, ...}`), so a
configuration without it keeps what the service reports, and the restored system is not replaced."""
import copy

from harness.double import planning
from harness.double.schema import load_provider_schema
from harness.ocids import mint

RESTORED = {"id": mint("mysqldbsystem", "restored", "us-phoenix-1"), "display_name": "mlflow-mysql",
            "source": [{"source_type": "BACKUP", "backup_id": mint("mysqlbackup", "before", "us-phoenix-1"),
                        "db_system_id": None, "recovery_point": None, "source_url": None}]}
CONFIGURED = {"id": None, "display_name": "mlflow-mysql", "source": []}


def _db_system_block() -> dict:
    return load_provider_schema()["resource_schemas"]["oci_mysql_mysql_db_system"]["block"]


def _replace_reasons(block: dict) -> list[str]:
    planned = planning.keep_prior_computed(block, CONFIGURED, RESTORED)
    return planning.replace_reasons(block, RESTORED, planned)


def test_a_restored_db_system_is_kept_when_the_configuration_has_no_source():
    block = _db_system_block()
    assert block["block_types"]["source"].get("x_computed") is True
    assert planning.keep_prior_computed(block, CONFIGURED, RESTORED)["source"] == RESTORED["source"]
    assert _replace_reasons(block) == []


def test_without_the_computed_rule_the_double_would_replace_it():
    """The control: the same plan with `source` as a plain ForceNew block replaces the restored DB system."""
    block = copy.deepcopy(_db_system_block())
    del block["block_types"]["source"]["x_computed"]
    assert _replace_reasons(block) == ["source"]
