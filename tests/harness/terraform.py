"""Run real Terraform against the oci provider double in a working directory."""
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import needs, tools
from .mirror import terraform_env

# Commands that change no state, so running one again after the double's process died is harmless.
READ_ONLY_COMMANDS = ("init", "validate", "plan", "output", "show", "providers")


def _double_died(result: subprocess.CompletedProcess) -> bool:
    """Terraform's diagnostic when the provider's process goes away while a call is in flight."""
    text = " ".join(result.stderr.split())
    return result.returncode != 0 and "Plugin error" in text and "unexpected EOF" in text


class TerraformError(AssertionError):
    def __init__(self, args, result):
        self.result = result
        self.message = " ".join(result.stderr.split())  # Terraform wraps long diagnostics
        super().__init__(f"terraform {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")


@dataclass
class PlannedValues:
    """What a plan says, in the shape tests assert on."""
    values: dict          # resource address -> planned values ("after")
    counts: dict          # resource type -> number of managed resources in the plan
    outputs: dict         # output name -> planned value (None when unknown until apply)
    actions: dict         # resource address -> list of actions (["create"], ["update"], ...)
    raw: dict = field(repr=False)

    @classmethod
    def from_plan(cls, plan: dict) -> "PlannedValues":
        values, counts, actions = {}, {}, {}
        for change in plan.get("resource_changes", []):
            if change["mode"] != "managed":
                continue
            address, after = change["address"], change["change"]["after"]
            actions[address] = change["change"]["actions"]
            if after is not None:
                values[address] = after
                counts[change["type"]] = counts.get(change["type"], 0) + 1
        outputs = {name: o.get("after") for name, o in plan.get("output_changes", {}).items()}
        return cls(values=values, counts=counts, outputs=outputs, actions=actions, raw=plan)


class Terraform:
    """One working directory; every command runs offline with the double."""

    def __init__(self, workdir, binary: str | None = None, fixtures: dict | None = None, timeout: int = 600):
        self.workdir = Path(workdir)
        self.binary = binary or tools.terraform()
        self.env = terraform_env(self.workdir, fixtures)
        self.timeout = timeout

    def run(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        needs.used("terraform")
        command = [self.binary, *args]
        if args[0] not in ("output", "show", "version", "fmt"):
            command.append("-no-color")
        result = self._run(command)
        if args[0] in READ_ONLY_COMMANDS and _double_died(result):
            # The double's process ended mid-call (seen once in CI, never reproduced): a command that
            # changes nothing runs once more; a second death, or one during an apply, still fails.
            print(f"terraform {args[0]}: the provider double's process ended mid-call; running it once more")
            result = self._run(command)
        if check and result.returncode != 0:
            raise TerraformError(args, result)
        return result

    def _run(self, command: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=self.workdir, env=self.env, capture_output=True, text=True,
                              timeout=self.timeout)

    def _var_args(self, tfvars: dict | None) -> list[str]:
        if not tfvars:
            return []
        path = self.workdir / ".test.tfvars.json"
        # one variable a line: Terraform quotes the line that set a refused variable, and it must not
        # carry the others (passwords among them)
        path.write_text(json.dumps(tfvars, indent=1))
        return [f"-var-file={path}"]

    def init(self):
        return self.run("init", "-input=false")

    def validate(self, check: bool = True):
        return self.run("validate", check=check)

    def plan(self, tfvars: dict | None = None, out: str = "plan.bin") -> dict:
        self.run("plan", "-input=false", f"-out={out}", *self._var_args(tfvars))
        return self.show_json(out)

    def show_json(self, plan_file: str = "plan.bin") -> dict:
        return json.loads(self.run("show", "-json", plan_file).stdout)

    def plan_summary(self, tfvars: dict | None = None) -> PlannedValues:
        return PlannedValues.from_plan(self.plan(tfvars))

    def plan_exit_code(self, tfvars: dict | None = None) -> subprocess.CompletedProcess:
        """`plan -detailed-exitcode`: 0 no changes, 1 error, 2 changes."""
        return self.run("plan", "-input=false", "-detailed-exitcode", *self._var_args(tfvars), check=False)

    def apply(self, tfvars: dict | None = None, plan_file: str | None = None):
        if plan_file:
            return self.run("apply", "-input=false", "-auto-approve", plan_file)
        return self.run("apply", "-input=false", "-auto-approve", *self._var_args(tfvars))

    def output(self) -> dict:
        return {k: v["value"] for k, v in json.loads(self.run("output", "-json").stdout).items()}

    def destroy(self, tfvars: dict | None = None):
        return self.run("destroy", "-input=false", "-auto-approve", *self._var_args(tfvars))

    def state_resources(self) -> list[str]:
        result = self.run("state", "list", check=False)
        return result.stdout.split() if result.returncode == 0 else []


def apply_and_replan(tf: Terraform, tfvars: dict | None = None) -> dict:
    """Apply, then re-plan with the same inputs and assert Terraform sees nothing to change.

    Returns the outputs after apply."""
    tf.apply(tfvars)
    replan = tf.plan_exit_code(tfvars)
    assert replan.returncode == 0, f"re-plan after apply shows drift:\n{replan.stdout}\n{replan.stderr}"
    return tf.output()
