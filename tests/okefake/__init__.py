"""A stand-in for kubectl and the OKE cluster behind it (see kubectl.py)."""
from .install import FakeCluster, install

__all__ = ["FakeCluster", "install"]
