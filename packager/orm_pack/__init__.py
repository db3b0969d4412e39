"""orm-pack: build the oci-mlflow Resource Manager stack and drive it through the OCI SDK."""

__version__ = "0.1.0"
