"""A copy of the project as a fresh clone has it: the files git tracks, nothing else (no venvs, no
build output), for tests that run a README or workflow command in a checkout of their own."""
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def copy_tracked_files(destination: Path) -> Path:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, check=True, capture_output=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def stack_variables_text(root: Path = REPO_ROOT) -> str:
    """Every variable declaration of the stack: variables.tf and its variables-<concern>.tf siblings."""
    return "".join(path.read_text() for path in sorted((root / "stack").glob("variables*.tf")))
