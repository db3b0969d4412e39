"""tests/security/README.md names the test that refuses each attack: every file and test it names exists."""
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def named_tests() -> list[tuple[Path, str | None]]:
    found, current = [], None
    for token in re.findall(r"`([^`]+)`", (HERE / "README.md").read_text()):
        path, _, name = token.partition("::")
        if path.endswith(".py"):
            # a bare file name: here, else beside the file named before it in the same sentence
            current = REPO / path if "/" in path else HERE / path if (HERE / path).is_file() or current is None \
                else current.parent / path
        elif path or not name:
            continue  # a header name or a setting, not a test
        found.append((current, name or None))
    return found


def test_every_test_the_security_index_names_exists():
    named = named_tests()
    assert len(named) > 20
    for path, name in named:
        assert path is not None and path.is_file(), path
        if name:
            assert re.search(rf"^def {re.escape(name)}\(", path.read_text(), re.MULTILINE), f"{path}::{name}"
