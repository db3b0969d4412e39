"""Which files of a source tree make up the stack: an allowlist, so nothing else can slip into the zip.

Anything not named here stays out, whatever it is called: `.env`, `server.key`, an SSH key, a tfvars
backup, a private key beside the nginx template. Symbolic links are refused, since following one would
copy whatever it points to (an OCI API key, say) into the zip.

setup.py loads this module by its path to bundle the same files into the wheel, so it imports nothing
outside the standard library and nothing from this package.

    >>> [path for path, _ in select(Path("."))][:2]
    ['docker/Dockerfile-serving', 'docker/Dockerfile-tracking']
"""
from __future__ import annotations

import os
import re
from pathlib import Path

# Paths relative to the source root; `*` stays inside one directory. (docker/refresh_locks.py, a
# developer's tool, is not among them.)
STACK_FILES = (
    "VERSION",
    "schema.yaml",
    "stack/*.tf",
    "stack/provider.auto.tfvars.template",
    "userdata/*.tftpl",
    "userdata/*.sh",
    "userdata/*.service",
    "userdata/*.timer",
    "docker/Dockerfile-*",
    "docker/requirements-*.txt",
    "docker/requirements-*.lock",
    "docker/images.json",
    "docker/*.sh",
    "docker/*/*.sh",
    "docker/*/*.py",
    "docker/*/*.template",
    "docker/nginx/*.conf",
    "docker/lib/*/*.py",
    "docker/lib/*.dist-info/*",
    "oke/base/*.yaml",
    "oke/overlays/*/*.yaml",
)
# Directories a walk never enters: tool caches and version control, possibly large.
SKIPPED_DIRECTORIES = {"__pycache__", "node_modules"}


class SymlinkRefused(Exception):
    """A file the allowlist names is a symbolic link."""

    def __init__(self, path: str, target: str):
        super().__init__(path)
        self.path, self.target = path, target


def _pattern_regex(pattern: str) -> re.Pattern:
    regex = ""
    for token in re.split(r"(\*|\?)", pattern):
        regex += {"*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    return re.compile(regex + r"\Z")


_ALLOWED = tuple(_pattern_regex(p) for p in STACK_FILES)
_WALKED_ROOTS = sorted({p.split("/", 1)[0] for p in STACK_FILES if "/" in p})


def is_stack_file(relative: str) -> bool:
    """Whether a path relative to the source root (with `/` separators) belongs in the stack."""
    return any(regex.match(relative) for regex in _ALLOWED)


def select(root: Path) -> list[tuple[str, Path]]:
    """(relative path, file) of every stack file under `root`, sorted. Raises SymlinkRefused when one of
    them, or a directory on its way, is a symbolic link."""
    root = Path(root)
    found: list[tuple[str, Path]] = []
    for top in (".", *_WALKED_ROOTS):
        start = root / top
        if top == ".":
            candidates = [(name, root / name) for name in STACK_FILES if "/" not in name]
        elif start.is_dir() or start.is_symlink():
            candidates = list(_walk(root, start))
        else:
            continue
        for relative, path in candidates:
            if not is_stack_file(relative) or not (path.is_file() or path.is_symlink()):
                continue
            if path.is_symlink():
                raise SymlinkRefused(relative, os.readlink(path))
            found.append((relative, path))
    return sorted(found)


def _walk(root: Path, start: Path):
    if start.is_symlink():
        raise SymlinkRefused(start.relative_to(root).as_posix(), os.readlink(start))
    for dirpath, dirnames, filenames in os.walk(start):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            if name.startswith(".") or name in SKIPPED_DIRECTORIES:
                continue
            if (here / name).is_symlink():
                # a linked directory among the stack's own would bring in whatever it points to
                raise SymlinkRefused((here / name).relative_to(root).as_posix(), os.readlink(here / name))
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = here / name
            yield path.relative_to(root).as_posix(), path
