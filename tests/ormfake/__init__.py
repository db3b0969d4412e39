"""A signature-checking Resource Manager fake for orm-pack's tests (see server.py), and test API keys."""
from .keys import ApiKey, write_oci_config
from .server import ResourceManagerFake

__all__ = ["ApiKey", "ResourceManagerFake", "write_oci_config"]
