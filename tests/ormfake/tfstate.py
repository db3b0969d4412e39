"""What the fake's services find in the stacks' Terraform states (what the applies created), and the states an
IMPORT_TF_STATE job brings."""
import base64
import binascii
import json


def managed_attributes(state: dict, resource_type: str):
    """The attributes of every instance of a managed resource of `resource_type` in a Terraform state."""
    for resource in state.get("resources", []):
        if resource.get("type") == resource_type and resource.get("mode") == "managed":
            for instance in resource.get("instances", []):
                yield instance.get("attributes", {})


def import_details(details: dict) -> bytes:
    """The state an IMPORT_TF_STATE job uploads (oci.resource_manager.models.CreateImportTfStateJobOperationDetails:
    `tfStateBase64Encoded`, the Terraform state file in base64); ValueError when it is missing or not base64."""
    encoded = details.get("tfStateBase64Encoded")
    if not encoded:
        raise ValueError("jobOperationDetails.tfStateBase64Encoded is required")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("jobOperationDetails.tfStateBase64Encoded is not base64") from None

def read_state(data: bytes) -> dict:
    """A Terraform state file (format version 4) as Terraform reads one; ValueError with Terraform's words
    (its statefile reader: "Unsupported state file format", "The state file could not be parsed as JSON")
    when it is not one."""
    try:
        state = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"Unsupported state file format: The state file could not be parsed as JSON: {exc}") from None
    if not isinstance(state, dict) or "version" not in state:
        raise ValueError('Unsupported state file format: The state file does not have a "version" attribute, which '
                         "is required to identify the format version.")
    if state["version"] != 4:
        raise ValueError(f"Unsupported state file format: The state file uses format version {state['version']}, "
                         "which is not supported by Terraform 1.5.")
    shape = {"terraform_version": str, "serial": int, "lineage": str, "resources": list}
    wrong = [key for key, kind in shape.items() if not isinstance(state.get(key), kind)]
    if wrong or not all(isinstance(r, dict) and {"mode", "type", "name", "instances"} <= set(r) for r in state["resources"]):
        raise ValueError(f"Failed to load state: the state file's {', '.join(wrong) or 'resources'} is not as a "
                         "version 4 state file has it")
    return state
