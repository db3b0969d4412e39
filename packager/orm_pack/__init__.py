"""orm-pack: build the oci-mlflow Resource Manager stack and drive it through the OCI SDK."""

from pathlib import Path


def _release() -> str:
    """The project's VERSION file: in the checkout this package runs from, else in the bundled stack."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1] / "VERSION", here / "bundle" / "VERSION"):
        if candidate.is_file():
            return candidate.read_text().strip()
    return "0+unknown"


__version__ = _release()
