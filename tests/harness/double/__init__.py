"""A double of the oracle/oci Terraform provider that serves the real provider schema.

Terraform core validates configuration against the schema a provider serves, so with the real
schema (committed subset in ../schema/) it reports unknown arguments, missing required ones and
wrong block nesting exactly as with the real provider. Plan and apply mimic the provider SDK
(terraform-plugin-sdk v2) closely enough for plans, applies and re-plans to behave like real ones.
"""
