"""Assemble the Resource Manager stack zip, deterministically.

Layout of a SOURCE directory (the project checkout, or orm_pack/bundle inside the installed package):

    SOURCE/stack/*.tf ...      -> zip root (flattened)
    SOURCE/schema.yaml         -> zip root
    SOURCE/userdata/**         -> userdata/**
    SOURCE/docker/**           -> docker/**

Two builds of the same files are byte-identical: entries sorted, timestamps fixed to 1980-01-01,
modes 0644 (0755 for executables), fixed compression level. State, .terraform, lock files, tfvars
(they hold credentials) and editor junk are left out. The zip is validated before it is written
(schema.yaml vs the Terraform variables, DESIGN.md §3) and must stay under Resource Manager's 11 MB.

    >>> built = build_zip(find_source(None), Path("dist/oci-mlflow-stack.zip"))
    >>> built.sha256, built.size, built.files
"""
from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import formcheck, tfvariables
from .errors import ExitCode, UserError

MAX_ZIP_BYTES = 11 * 1024 * 1024  # Resource Manager's limit for an uploaded configuration
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
SUBDIRS = ("userdata", "docker")

EXCLUDED_DIRS = {
    ".terraform", ".git", ".hg", ".svn", ".idea", ".vscode", "__pycache__", ".pytest_cache", ".mypy_cache",
    "node_modules", ".tfcache",
}
EXCLUDED_FILES = (
    "*.tfstate", "*.tfstate.*", ".terraform.lock.hcl", "*.tfplan", "*.tfvars", "*.tfvars.json", "crash.log",
    "crash.*.log", "*~", "*.swp", "*.swo", "*.swx", ".#*", "#*#", ".DS_Store", "Thumbs.db", "desktop.ini",
    "*.pyc", "*.pyo", "*.orig", "*.rej", "*.bak", "*.tmp", ".netrc", "*.pem", "oci_api_key*",
)


@dataclass(frozen=True)
class BuiltZip:
    """A built stack zip."""

    path: Path
    sha256: str
    size: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """Where the stack comes from, and the files that go into the zip (arcname -> file)."""

    root: Path
    entries: tuple[tuple[str, Path], ...]

    @property
    def stack_dir(self) -> Path:
        return self.root / "stack"


def is_source(directory: Path) -> bool:
    return (directory / "stack").is_dir() and (directory / "schema.yaml").is_file()


def bundled_source() -> Path:
    """The stack copied into the installed package at wheel build time (see setup.py)."""
    return Path(__file__).resolve().parent / "bundle"


def find_source(explicit: str | os.PathLike | None, cwd: Path | None = None) -> Path:
    """SOURCE given on the command line, else the current directory or the project checkout this
    package runs from, else the bundle inside the installed package."""
    if explicit is not None:
        directory = Path(explicit).expanduser()
        if not directory.is_dir():
            raise UserError(f"SOURCE {directory} is not a directory", ExitCode.USAGE)
        if not is_source(directory):
            raise UserError(
                f"SOURCE {directory} has no stack/ directory and schema.yaml next to it; "
                "pass the oci-mlflow checkout (or omit SOURCE to use the bundled stack)",
                ExitCode.USAGE,
            )
        return directory.resolve()
    cwd = (cwd or Path.cwd()).resolve()
    checkout = Path(__file__).resolve().parents[2]  # packager/orm_pack -> checkout root (editable install)
    for candidate in (cwd, checkout, bundled_source()):
        if is_source(candidate):
            return candidate
    raise UserError(
        "no stack to build: run in the oci-mlflow checkout or pass SOURCE (a directory with stack/ and "
        "schema.yaml); this installation carries no bundled stack",
        ExitCode.USAGE,
    )


def _excluded(name: str, is_dir: bool) -> bool:
    if is_dir:
        return name in EXCLUDED_DIRS
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in EXCLUDED_FILES)


def _walk(top: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not _excluded(d, True))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not _excluded(name, False) and path.is_file():
                found.append(path)
    return found


def collect(root: Path) -> Source:
    """The files of SOURCE `root` with their zip names; raises UserError on a name clash."""
    root = Path(root)
    entries: dict[str, Path] = {}

    def add(arcname: str, path: Path) -> None:
        if arcname in entries:
            raise UserError(
                f"two files map to {arcname!r} in the zip: {entries[arcname]} and {path}; rename one", ExitCode.USAGE
            )
        entries[arcname] = path

    for path in _walk(root / "stack"):
        relative = path.relative_to(root / "stack").as_posix()
        if relative.split("/", 1)[0] in SUBDIRS or relative == "schema.yaml":
            raise UserError(f"stack/{relative} would clash with the top-level {relative.split('/', 1)[0]} in the zip; "
                            "rename it", ExitCode.USAGE)
        add(relative, path)
    add("schema.yaml", root / "schema.yaml")
    for sub in SUBDIRS:
        if (root / sub).is_dir():
            for path in _walk(root / sub):
                add(path.relative_to(root).as_posix(), path)
    return Source(root=root, entries=tuple(sorted(entries.items())))


def validate(source: Source) -> None:
    """Schema.yaml against Resource Manager's rules and the Terraform variables/outputs; raises UserError."""
    module = tfvariables.read_module(source.stack_dir)
    form = formcheck.load_form(source.root / "schema.yaml")
    errors = formcheck.check_form(form, module.variables, module.outputs)
    if errors:
        shown = "; ".join(errors[:10]) + (f"; ... and {len(errors) - 10} more" if len(errors) > 10 else "")
        raise UserError(f"schema.yaml: {len(errors)} problem(s): {shown}", ExitCode.USAGE)


def zip_bytes(source: Source) -> bytes:
    """The zip as bytes: sorted entries, fixed dates, 0644/0755 modes, deflate level 9."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for arcname, path in source.entries:
            info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE)
            executable = os.stat(path).st_mode & stat.S_IXUSR
            info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def build_zip(root: Path | str, output: Path | str, max_bytes: int = MAX_ZIP_BYTES) -> BuiltZip:
    """Validate SOURCE `root` and write the zip to `output` atomically (nothing is left behind on error)."""
    source = collect(Path(root))
    validate(source)
    data = zip_bytes(source)
    if len(data) > max_bytes:
        raise UserError(
            f"the stack zip would be {len(data) / 1048576:.1f} MB, over Resource Manager's "
            f"{max_bytes / 1048576:.0f} MB limit; remove large files from {source.root}",
            ExitCode.TOO_LARGE,
        )
    output = Path(output)
    partial = output.with_name(f".{output.name}.partial")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {output}: {exc.strerror or exc}", ExitCode.USAGE) from None
    return BuiltZip(
        path=output,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        files=tuple(name for name, _ in source.entries),
    )
