"""Offline test harness: Terraform with a double of the oci provider, checkov and static checkers."""
