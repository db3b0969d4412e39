"""What the fake's services find in the stacks' Terraform states (what the applies created)."""


def managed_attributes(state: dict, resource_type: str):
    """The attributes of every instance of a managed resource of `resource_type` in a Terraform state."""
    for resource in state.get("resources", []):
        if resource.get("type") == resource_type and resource.get("mode") == "managed":
            for instance in resource.get("instances", []):
                yield instance.get("attributes", {})
