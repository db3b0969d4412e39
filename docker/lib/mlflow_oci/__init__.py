"""MLflow on OCI without static keys: the `oci://` artifact store and Vault secrets, both reached
through the machine's own identity (instance principal) with the OCI Python SDK.

The images put docker/lib on PYTHONPATH; the `*.dist-info` beside this package declares the
`mlflow.artifact_repository` entry point, so every MLflow process (gunicorn workers included)
finds the `oci` scheme without a pip install.
"""
