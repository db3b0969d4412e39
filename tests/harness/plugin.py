"""Serving a provider double to Terraform over the plugin protocol: the PyPI package `tf` speaks gRPC and
the handshake; each double is a servicer of its own."""
import sys


def serve(servicer, address: str, argv=None) -> None:
    """Serve `servicer` as the provider `address` (e.g. registry.terraform.io/oracle/oci) until Terraform
    stops it."""
    import tf.provider
    from tf.runner import run_provider

    class _Name:
        def full_name(self):
            return address

    # run_provider wraps a `tf` framework provider in tf.provider.ProviderServicer; a double serves its own.
    tf.provider.ProviderServicer = lambda _provider: servicer
    run_provider(_Name(), argv or sys.argv)
