"""Loopback fakes of the OCI services an instance talks to with its own identity: the instance
metadata service, the federation endpoint that trades the instance certificate for a token, Vault's
Secrets API and Object Storage, with request signatures and per-instance grants checked."""
