"""Run Resource Manager jobs for real: unzip the stack's configuration, run Terraform (with the oci
provider double), keep the state per stack, turn Terraform's output into job log entries."""
import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

from harness import needs


class JobCanceled(Exception):
    pass


class TerraformJob:
    """One job's work. `log(level, message)` records a log entry; `canceled()` says whether to stop."""

    def __init__(self, terraform: str, env_for, workdir: Path, state_file: Path, variables: dict, log, canceled):
        self.terraform = terraform
        self.env_for = env_for
        self.workdir = workdir
        self.state_file = state_file
        self.variables = variables
        self.log = log
        self.canceled = canceled
        self.process = None

    def env(self) -> dict:
        env = self.env_for(self.workdir)
        for name in list(env):
            if name.startswith("TF_VAR_"):
                del env[name]
        # Resource Manager hands variables to Terraform as strings; complex types are parsed as HCL
        env.update({f"TF_VAR_{name}": value for name, value in self.variables.items()})
        return env

    def run(self, *args) -> None:
        if self.canceled():
            raise JobCanceled()
        needs.used("terraform")
        command = [self.terraform, *args]
        self.log("INFO", "$ terraform " + " ".join(args))
        self.process = subprocess.Popen(command, cwd=self.workdir, env=self.env(), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        for line in self.process.stdout:
            self.log("INFO", line.rstrip("\n"))
        code = self.process.wait()
        if self.canceled():
            raise JobCanceled()
        if code != 0:
            raise RuntimeError(f"terraform {args[0]} exited with status {code}")

    def capture(self, *args) -> str:
        needs.used("terraform")
        result = subprocess.run([self.terraform, *args], cwd=self.workdir, env=self.env(), capture_output=True,
                                text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"terraform {args[0]} failed: {result.stderr.strip()}")
        return result.stdout

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGINT)
                time.sleep(2)
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # ------------------------------------------------------------- steps
    def unpack(self, zip_data: bytes) -> None:
        config = self.workdir
        config.mkdir(parents=True, exist_ok=True)
        zip_path = config.parent / "config.zip"
        zip_path.write_bytes(zip_data)
        with zipfile.ZipFile(zip_path) as archive:
            for name in archive.namelist():
                target = (config / name).resolve()
                if not str(target).startswith(str(config.resolve())):
                    raise RuntimeError(f"zip entry {name} escapes the working directory")
            archive.extractall(config)
        self.log("INFO", f"Unpacked {len(archive.namelist())} files of the configuration")

    def restore_state(self) -> None:
        local = self.workdir / "terraform.tfstate"
        if self.state_file.exists():
            shutil.copyfile(self.state_file, local)
        elif local.exists():
            local.unlink()

    def save_state(self) -> None:
        local = self.workdir / "terraform.tfstate"
        if local.exists():
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, self.state_file)

    def init(self) -> None:
        self.run("init", "-input=false", "-no-color")

    def plan(self) -> tuple[bytes, dict]:
        self.restore_state()
        self.run("plan", "-input=false", "-no-color", "-out=tfplan.bin")
        plan_json = json.loads(self.capture("show", "-json", "tfplan.bin"))
        return (self.workdir / "tfplan.bin").read_bytes(), plan_json

    def apply_plan(self) -> None:
        self.restore_state()
        try:
            self.run("apply", "-input=false", "-no-color", "tfplan.bin")
        finally:
            self.save_state()

    def apply(self) -> None:
        self.restore_state()
        try:
            self.run("apply", "-input=false", "-no-color", "-auto-approve")
        finally:
            self.save_state()

    def destroy(self) -> None:
        self.restore_state()
        try:
            self.run("destroy", "-input=false", "-no-color", "-auto-approve")
        finally:
            self.save_state()

    def outputs(self) -> list[dict]:
        """Terraform outputs as Resource Manager JobOutputSummary JSON."""
        raw = json.loads(self.capture("output", "-json") or "{}")
        items = []
        for name, output in sorted(raw.items()):
            kind = output.get("type")
            kind = kind[0] if isinstance(kind, list) else (kind or "string")
            value = output.get("value")
            items.append({
                "outputName": name,
                "outputType": kind,
                "outputValue": value if isinstance(value, str) else json.dumps(value),
                "isSensitive": bool(output.get("sensitive")),
                "description": None,
            })
        return items
