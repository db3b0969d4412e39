"""Where a path inside the tracking image comes from in the repository, by Dockerfile-tracking's COPY lines:
so a test can run a pod's command natively, with the repository's files."""
import json
import re
from pathlib import Path

from harness import dockerfiles

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile-tracking"


def entrypoint() -> list[str]:
    return json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", DOCKERFILE.read_text(), re.MULTILINE).group(1))


def copied_to(image_path: str) -> str:
    """The repository file (relative) that the COPY lines put at `image_path`."""
    for sources, target in dockerfiles.copies(DOCKERFILE):
        for source in sources:
            if target.endswith("/"):  # files into a directory
                if image_path == target + source.rsplit("/", 1)[1]:
                    return source
            elif image_path.startswith(target + "/"):  # a directory copied as a whole
                candidate = f"{source}/{image_path[len(target) + 1:]}"
                if (REPO_ROOT / candidate).is_file():
                    return candidate
    raise AssertionError(f"no COPY in {DOCKERFILE.name} puts a file at {image_path}")


def native_argv(container: dict) -> list[str]:
    """The container's command and args with the image's files replaced by the repository's."""
    return [str(REPO_ROOT / copied_to(word)) if word.startswith("/opt/mlflow/") else word
            for word in container["command"] + container.get("args", [])]
