"""Run checkov (from its own venv: it conflicts with python-hcl2) and judge its report.

A run is clean when nothing failed to parse, no check crashed, and every failed check is in the
committed skip list, where each entry carries a reason a reviewer can accept. An entry may name the
resources it covers (`resources:` addresses where `*` matches anything); the check still counts
everywhere else.
"""
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import needs
from .tools import CHECKOV_VENV_BIN, require_binary

FRAMEWORKS = ("terraform", "terraform_plan", "kubernetes", "dockerfile")


@dataclass
class CheckovReport:
    resource_count: int
    parsing_errors: list
    failed: list            # (check_id, resource, file)
    crashed: list           # log lines of checks that raised
    raw: list = field(repr=False)


@dataclass(frozen=True)
class Skip:
    reason: str
    resources: tuple = ()   # addresses covered, `*` matching anything; empty: every resource

    def covers(self, resource: str) -> bool:
        return not self.resources or any(
            re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), resource) for pattern in self.resources)


def load_skip_list(path: Path) -> dict[str, Skip]:
    """`- id: CKV_... / reason: ... / resources: [...]` entries -> {id: Skip}; an entry without a
    reason is an error."""
    entries = yaml.safe_load(Path(path).read_text()) or []
    skips = {}
    for entry in entries:
        reason = (entry.get("reason") or "").strip()
        if not entry.get("id") or len(reason) < 20:
            raise AssertionError(f"{path}: skip entry {entry!r} needs an id and a reason of a sentence or more")
        skips[entry["id"]] = Skip(reason, tuple(entry.get("resources") or ()))
    return skips


def _checkov(where: list[str], framework: str) -> tuple[list, list]:
    """One checkov run over `where` (-f/-d arguments): (its report parts, lines of checks that crashed)."""
    needs.used("terraform")  # checkov scans Terraform code and plans
    assert framework in FRAMEWORKS, framework
    checkov = require_binary("checkov", "CHECKOV", extra_dirs=(CHECKOV_VENV_BIN,), how="a venv with checkov==3.3.30")
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [checkov, *where, "--framework", framework, "-o", "json", "--skip-download", "--soft-fail"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, f"checkov exited {result.returncode}:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    crashed = [line for line in (result.stderr + result.stdout).splitlines() if "Failed to run check" in line]
    return (report if isinstance(report, list) else [report]), crashed


def run_checkov(target: Path, framework: str) -> CheckovReport:
    target = Path(target)
    reports, crashed = _checkov(["-f", str(target)] if target.is_file() else ["-d", str(target)], framework)
    failed, parsing_errors, resources = [], [], 0
    for part in reports:
        summary = part.get("summary", part)
        resources += summary.get("resource_count", 0)
        parsing_errors += part.get("results", {}).get("parsing_errors", []) or []
        if summary.get("parsing_errors") and not part.get("results", {}).get("parsing_errors"):
            parsing_errors.append(f"{summary['parsing_errors']} file(s) failed to parse")
        for check in part.get("results", {}).get("failed_checks", []):
            failed.append((check["check_id"], check["resource"], check.get("file_path", "")))
    return CheckovReport(resource_count=resources, parsing_errors=parsing_errors, failed=failed,
                         crashed=crashed, raw=reports)


def run_checkov_each(files: list[Path], framework: str) -> dict[Path, CheckovReport]:
    """One checkov run over several files (checkov's start is most of a run), judged file by file: each
    file's report holds its own results; a crashed check counts against every file."""
    files = [Path(f) for f in files]
    reports, crashed = _checkov([arg for f in files for arg in ("-f", str(f))], framework)
    by_file = {f: CheckovReport(0, [], [], list(crashed), []) for f in files}

    def owner(path: str) -> Path:
        matches = [f for f in files if path == str(f) or path.endswith("/" + f.name)]
        assert len(matches) == 1, f"checkov reported {path}, which is not one of {[str(f) for f in files]}"
        return matches[0]

    for part in reports:
        results = part.get("results", {})
        for path in results.get("parsing_errors", []) or []:
            by_file[owner(path)].parsing_errors.append(path)
        resources: dict[Path, set] = {f: set() for f in files}
        for kind in ("passed_checks", "failed_checks", "skipped_checks"):
            for check in results.get(kind, []):
                file = owner(check.get("file_path", ""))
                resources[file].add(check["resource"])
                if kind == "failed_checks":
                    by_file[file].failed.append((check["check_id"], check["resource"], check.get("file_path", "")))
        for file, names in resources.items():
            by_file[file].resource_count += len(names)
        for report in by_file.values():
            report.raw.append(part)
    return by_file


def problems(report: CheckovReport, skips: dict[str, Skip]) -> list[str]:
    """Everything that makes a run not clean, one line each."""
    out = [f"parse error: {e}" for e in report.parsing_errors]
    out += [f"crashed: {line}" for line in report.crashed]
    out += [f"{cid} failed on {resource} ({path})" for cid, resource, path in report.failed
            if cid not in skips or not skips[cid].covers(resource)]
    if report.resource_count == 0:
        out.append("checkov scanned no resource (a parse problem or the wrong framework)")
    return out


def assert_clean(report: CheckovReport, skips: dict[str, Skip]) -> None:
    found = problems(report, skips)
    assert not found, "checkov:\n  " + "\n  ".join(found)
