"""The project's own wiring: CI runs the README's test command, the CLI answers --version/--help, the
code is lint-clean."""
import re
import subprocess
import sys
from pathlib import Path

from orm_pack import __version__

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_test_command_written_in_the_readme():
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    test_command = next(b.strip() for b in blocks if "pytest" in b)
    ci_lines = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_cli_reports_its_version_and_help():
    version = subprocess.run([sys.executable, "-m", "orm_pack.cli", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip() == f"orm-pack {__version__}"
    usage = subprocess.run([sys.executable, "-m", "orm_pack.cli", "--help"], capture_output=True, text=True)
    assert usage.returncode == 0
    for command in ("build", "plan", "apply", "destroy", "outputs", "logs", "status", "local"):
        assert re.search(rf"^\s+{command}\s", usage.stdout, re.M), f"{command} missing from --help"


def test_ruff_finds_nothing():
    from harness.tools import find_binary, missing

    ruff = find_binary("ruff")
    if not ruff:
        missing("ruff", "pip install -e '.[test]'")
    result = subprocess.run([ruff, "check", "--no-cache", "--output-format", "concise", str(REPO_ROOT)],
                            capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_docs_name_only_paths_the_vms_have():
    """Every /etc/... path README and docker/README mention is one the stack's cloud-init writes or uses."""
    provisioned = "\n".join(p.read_text() for p in [*(REPO_ROOT / "userdata").iterdir(), *(REPO_ROOT / "stack").glob("*.tf")])
    for doc in ("README.md", "docker/README.md", "CONTRIBUTING.md"):
        for path in set(re.findall(r"/etc/[\w./-]*\w", (REPO_ROOT / doc).read_text())):
            assert path in provisioned, f"{doc} names {path}, which no VM has"


def test_every_document_the_project_names_is_in_the_project():
    """A reader sent to an upper-case document (README.md and the like) finds it in the repository."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.split()
    documents = {Path(name).name for name in tracked if name.endswith(".md")}
    missing = set()
    for name in tracked:
        path = REPO_ROOT / name
        if path.suffix in (".md", ".py", ".tf", ".yaml", ".yml", ".sh", ".txt", "") and path.is_file():
            text = path.read_text(errors="replace")
            missing |= {f"{name}: {found}" for found in re.findall(r"(?<![\w-])[A-Z][A-Z_-]*\.md\b", text) if found not in documents}
    assert missing == set()


def test_the_pre_commit_hooks_pass_on_the_tree(tmp_path):
    """Each hook of .pre-commit-config.yaml, run on every tracked file it would see, passes on main; the
    terraform hook also refuses a badly formatted file."""
    import os
    import shlex
    import shutil

    import yaml

    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    assert [hook["id"] for hook in hooks] == ["ruff", "terraform-fmt", "yaml"]
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.split()
    suffixes = {"python": (".py",), "yaml": (".yaml", ".yml")}
    python_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{python_bin}{os.pathsep}{os.environ['PATH']}", "TF_CLI_CONFIG_FILE": os.devnull}
    for hook in hooks:
        entry = shlex.split(hook["entry"].replace(".venv/bin/", f"{python_bin}/"))
        if hook.get("pass_filenames", True):
            wanted = tuple(s for kind in hook.get("types", []) for s in suffixes[kind])
            entry += [name for name in tracked if name.endswith(wanted)]
        if entry[0] == "terraform" and shutil.which("terraform") is None:
            raise AssertionError("terraform is not on PATH")
        result = subprocess.run(entry, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{hook['id']}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    badly_formatted = tmp_path / "stack" / "main.tf"
    badly_formatted.parent.mkdir()
    badly_formatted.write_text('variable "x" {\ndefault="a"\n}\n')
    terraform_fmt = next(shlex.split(hook["entry"]) for hook in hooks if hook["id"] == "terraform-fmt")
    assert subprocess.run(terraform_fmt, cwd=tmp_path, env=env, capture_output=True).returncode != 0
