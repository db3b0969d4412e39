"""`orm-pack oke`: the tracking server on the stack's OKE cluster, from the manifests in oke/."""
