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


def run_checkov(target: Path, framework: str) -> CheckovReport:
    needs.used("terraform")  # checkov scans Terraform code and plans
    assert framework in FRAMEWORKS, framework
    checkov = require_binary("checkov", "CHECKOV", extra_dirs=(CHECKOV_VENV_BIN,), how="a venv with checkov==3.3.30")
    target = Path(target)
    where = ["-f", str(target)] if target.is_file() else ["-d", str(target)]
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [checkov, *where, "--framework", framework, "-o", "json", "--skip-download", "--soft-fail"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, f"checkov exited {result.returncode}:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed, parsing_errors, resources = [], [], 0
    for part in reports:
        summary = part.get("summary", part)
        resources += summary.get("resource_count", 0)
        parsing_errors += part.get("results", {}).get("parsing_errors", []) or []
        if summary.get("parsing_errors") and not part.get("results", {}).get("parsing_errors"):
            parsing_errors.append(f"{summary['parsing_errors']} file(s) failed to parse")
        for check in part.get("results", {}).get("failed_checks", []):
            failed.append((check["check_id"], check["resource"], check.get("file_path", "")))
    crashed = [line for line in (result.stderr + result.stdout).splitlines() if "Failed to run check" in line]
    return CheckovReport(resource_count=resources, parsing_errors=parsing_errors, failed=failed,
                         crashed=crashed, raw=reports)


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
