"""Resource Manager runs Terraform 1.5.x only ("Supported Terraform Versions": it creates no stack and runs
no job on an older version). orm-pack creates stacks on 1.5.x, moves an older stack to it and says so, and
refuses an older --terraform-version before it calls the service; the fake refuses what the service does."""
import base64
import io
import zipfile

import pytest

from ormfake.server import ApiError
from ormfake.testing import COMPARTMENT, FIXTURE_SOURCE

COMMON = ("--compartment", COMPARTMENT, "--stack-name", "mlflow-tf", "--source", str(FIXTURE_SOURCE))


@pytest.mark.parametrize("version", ["1.2.x", "1.0.x", "0.14.x"])
def test_an_older_terraform_version_is_refused_before_anything_is_made(orm_pack, fake, version):
    result = orm_pack("plan", *COMMON, "--terraform-version", version)
    assert result.code == 2, result
    assert result.stderr.strip() == (f"orm-pack: error: --terraform-version {version}: Resource Manager no longer "
                                     "creates stacks or runs jobs on Terraform older than 1.5.x; use 1.5.x")
    assert fake.stacks == {}


def test_a_version_that_is_not_one_is_refused(orm_pack, fake):
    result = orm_pack("plan", *COMMON, "--terraform-version", "latest")
    assert result.code == 2 and "is not a Resource Manager Terraform version such as 1.5.x" in result.stderr
    assert fake.stacks == {}


def test_the_fake_refuses_to_create_a_stack_on_an_older_version(fake):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("main.tf", "")
    source = {"configSourceType": "ZIP_UPLOAD", "zipFileBase64Encoded": base64.b64encode(archive.getvalue()).decode()}
    with pytest.raises(ApiError, match="terraformVersion 1.2.x is not supported any more"):
        fake.create_stack({"compartmentId": COMPARTMENT, "terraformVersion": "1.2.x", "configSource": source})
    assert fake.create_stack({"compartmentId": COMPARTMENT, "configSource": source})["terraformVersion"] == "1.5.x"


@pytest.mark.terraform
def test_a_stack_on_an_older_version_is_moved_to_1_5_and_the_user_is_told(orm_pack, fake):
    created = orm_pack("plan", *COMMON)
    assert created.code == 0, created
    (stack,) = fake.stacks.values()
    assert stack["terraformVersion"] == "1.5.x"
    stack["terraformVersion"] = "1.2.x"  # made before Resource Manager retired 1.2.x
    with pytest.raises(ApiError, match="Terraform version 1.2.x is not supported any more"):
        fake.create_job({"stackId": stack["id"], "jobOperationDetails": {"operation": "PLAN"}})

    moved = orm_pack("plan", *COMMON)
    assert moved.code == 0, moved
    assert f"Stack mlflow-tf {stack['id']}: updated (Terraform 1.2.x -> 1.5.x)" in moved.stdout + moved.stderr
    assert stack["terraformVersion"] == "1.5.x"
    assert [j["lifecycleState"] for j in fake.jobs.values()] == ["SUCCEEDED", "SUCCEEDED"]
