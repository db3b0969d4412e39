"""Assemble the Resource Manager stack zip, deterministically.

Layout of a SOURCE directory (the project checkout, or orm_pack/bundle inside the installed package):

    SOURCE/stack/*.tf ...      -> zip root (flattened)
    SOURCE/schema.yaml         -> zip root
    SOURCE/userdata/**         -> userdata/**
    SOURCE/docker/**           -> docker/**

Two builds of the same files are byte-identical: entries sorted, timestamps fixed to 1980-01-01,
modes 0644 (0755 for executables), fixed compression level. Only the files allowlist.STACK_FILES
names go in (an allowlist: state, tfvars, keys and anything unexpected stay out; links are refused).
The zip is validated before it is written (schema.yaml against Resource Manager's form rules and the
Terraform variables) and must stay under Resource Manager's 11 MB.

    >>> built = build_zip(find_source(None), Path("dist/oci-mlflow-stack.zip"))
    >>> built.sha256, built.size, built.files
"""
from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from orm_pack.errors import ExitCode, UserError
from orm_pack.stack import allowlist, declarations, formcheck

MAX_ZIP_BYTES = 11 * 1024 * 1024  # Resource Manager's limit for an uploaded configuration
ROOT_FILES = ("schema.yaml", "VERSION")  # beside the flattened stack/*.tf at the zip root
FIXED_DATE = (1980, 1, 1, 0, 0, 0)


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


PACKAGE = Path(__file__).resolve().parents[1]  # orm_pack/stack/archive.py -> orm_pack


def is_source(directory: Path) -> bool:
    return (directory / "stack").is_dir() and (directory / "schema.yaml").is_file()


def bundled_source() -> Path:
    """The stack copied into the installed package at wheel build time (see setup.py)."""
    return PACKAGE / "bundle"


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
    checkout = PACKAGE.parents[1]  # packager/orm_pack -> checkout root (editable install)
    for candidate in (cwd, checkout, bundled_source()):
        if is_source(candidate):
            return candidate
    raise UserError(
        "no stack to build: run in the oci-mlflow checkout or pass SOURCE (a directory with stack/ and "
        "schema.yaml); this installation carries no bundled stack",
        ExitCode.USAGE,
    )


def collect(root: Path) -> Source:
    """The stack files of SOURCE `root` (allowlist.STACK_FILES) with their zip names: stack/*.tf go to
    the zip root. Raises UserError on a symbolic link or a name clash."""
    root = Path(root)
    try:
        selected = allowlist.select(root)
    except allowlist.SymlinkRefused as exc:
        raise UserError(f"{root / exc.path} is a symbolic link (to {exc.target}); the stack zip takes only "
                        "regular files: copy the file in its place", ExitCode.USAGE) from None
    entries: dict[str, Path] = {}
    for relative, path in selected:
        arcname = relative.split("/", 1)[1] if relative.startswith("stack/") else relative
        if arcname in entries:
            raise UserError(f"two files map to {arcname!r} in the zip: {entries[arcname]} and {path}; rename one",
                            ExitCode.USAGE)
        entries[arcname] = path
    if "schema.yaml" not in entries:
        raise UserError(f"{root} has no schema.yaml", ExitCode.USAGE)
    return Source(root=root, entries=tuple(sorted(entries.items())))


def validate(source: Source) -> None:
    """Schema.yaml against Resource Manager's rules and the Terraform variables/outputs; raises UserError."""
    module = declarations.read_module(source.stack_dir)
    form = formcheck.load_form(source.root / "schema.yaml")
    errors = formcheck.check_form(form, module.variables, module.outputs)
    release = source.root / "VERSION"
    if release.is_file() and str(form.get("version")) != release.read_text().strip():
        errors.append(f"version {form.get('version')!r} is not the release in VERSION "
                      f"({release.read_text().strip()}): make them the same")
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


@dataclass(frozen=True)
class StackArtifact:
    """A stack zip ready to upload: its bytes, what it holds, and the variables its Terraform declares."""

    data: bytes
    sha256: str
    files: tuple[str, ...]
    declared: dict          # name -> declarations.Variable
    origin: str             # the SOURCE directory or the --zip file it came from

    @property
    def size(self) -> int:
        return len(self.data)


def _check_size(size: int, what: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise UserError(f"{what} is {size / 1048576:.1f} MB, over Resource Manager's {max_bytes / 1048576:.0f} MB "
                        "limit; remove large files from the stack", ExitCode.TOO_LARGE)


def assemble(root: Path | str, max_bytes: int = MAX_ZIP_BYTES) -> StackArtifact:
    """Collect, validate and zip SOURCE `root` in memory."""
    source = collect(Path(root))
    validate(source)
    data = zip_bytes(source)
    _check_size(len(data), "the stack zip", max_bytes)
    return StackArtifact(data=data, sha256=hashlib.sha256(data).hexdigest(),
                         files=tuple(name for name, _ in source.entries),
                         declared=declarations.read_variables(source.stack_dir), origin=str(source.root))


def _source_path(arcname: str) -> str:
    """Where a zip entry lives in a SOURCE tree: the zip root's Terraform files come from stack/."""
    if "/" not in arcname and arcname not in ROOT_FILES:
        return "stack/" + arcname
    return arcname


def read_zip(path: Path | str, max_bytes: int = MAX_ZIP_BYTES, what: str = "--zip") -> StackArtifact:
    """A zip from `orm-pack build`, checked as strictly as a build: size, the allowlist (no entry the
    build would leave out, no link), the form against Resource Manager's meta schema and the variables.
    `what` names the zip in messages (the flag or argument it came from)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{what} {path}: {exc.strerror or exc}", ExitCode.USAGE) from None
    _check_size(len(data), f"{what} {path}", max_bytes)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UserError(f"{what} {path} is not a zip file", ExitCode.USAGE) from None
    with archive, tempfile.TemporaryDirectory() as tmp:
        names = []
        for info in archive.infolist():
            if info.is_dir():
                continue
            relative = _source_path(info.filename)
            is_link = stat.S_ISLNK(info.external_attr >> 16)
            if is_link or ".." in Path(relative).parts or relative.startswith("/") or \
                    not allowlist.is_stack_file(relative):
                raise UserError(f"{what} {path} holds {info.filename!r}, which a stack zip never carries; build the "
                                "zip with `orm-pack build`", ExitCode.USAGE)
            target = Path(tmp, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            names.append(info.filename)
        source = collect(Path(tmp))
        validate(source)
        declared = declarations.read_variables(source.stack_dir)
    return StackArtifact(data=data, sha256=hashlib.sha256(data).hexdigest(), files=tuple(sorted(names)),
                         declared=declared, origin=str(path))


def stack_artifact(source: str | os.PathLike | None = None, zip_path: Path | str | None = None) -> StackArtifact:
    """The one way a command gets the stack it uploads: a given zip, else a fresh build of SOURCE."""
    if zip_path is not None:
        return read_zip(zip_path)
    return assemble(find_source(source))


def build_zip(root: Path | str, output: Path | str, max_bytes: int = MAX_ZIP_BYTES) -> BuiltZip:
    """Validate SOURCE `root` and write the zip to `output` atomically (nothing is left behind on error)."""
    artifact = assemble(root, max_bytes)
    output = Path(output)
    partial = output.with_name(f".{output.name}.partial")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(artifact.data)
        os.replace(partial, output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {output}: {exc.strerror or exc}", ExitCode.USAGE) from None
    return BuiltZip(path=output, sha256=artifact.sha256, size=artifact.size, files=artifact.files)
