"""The tracking image a release runs for an MLflow version, read from the stack zip by the rule of
stack/locals.tf (`tracking_images`): <registry>/oci-mlflow-tracking:<release> for the release's own MLflow,
:<release>-mlflow<version> for another, by digest where docker/images.json records one (key "tracking", else
"tracking-<version>"). `orm-pack upgrade` on OKE needs it before the apply that would put it in the outputs:
the plan Job runs the target version's image on the database first.
"""
from __future__ import annotations

import io
import json
import zipfile

from orm_pack.errors import ExitCode, UserError


def tracking_image(zip_data: bytes, registry: str, version: str, own_version: str) -> str:
    if not registry:
        raise UserError("container_registry is empty: an OKE cluster pulls its images and cannot build them; set it "
                        "(or pass --image)", ExitCode.USAGE)
    with zipfile.ZipFile(io.BytesIO(zip_data)) as bundle:
        names = bundle.namelist()
        release = bundle.read("VERSION").decode().strip() if "VERSION" in names else ""
        digests = json.loads(bundle.read("docker/images.json")) if "docker/images.json" in names else {}
    if not release:
        raise UserError("the stack zip has no VERSION: build it with orm-pack build from a release", ExitCode.USAGE)
    key = "tracking" if version == own_version else f"tracking-{version}"
    if digests.get(key):
        return f"{registry}/oci-mlflow-tracking@{digests[key]}"
    return f"{registry}/oci-mlflow-tracking:{release}{'' if version == own_version else f'-mlflow{version}'}"
