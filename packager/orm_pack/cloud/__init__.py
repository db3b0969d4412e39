"""Everything that talks to OCI through the SDK: config and signers, the one client factory, the services."""
