"""Puts the fake kubectl (and a stand-in `oci` for the kubeconfig's token command) on a PATH directory."""
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class FakeCluster:
    bin_dir: Path
    state_file: Path

    def env(self, **settings) -> dict:
        """Environment for the CLI: PATH with the fakes first; settings: FAKE_KUBE_* behaviours."""
        env = {"PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_KUBE_STATE": str(self.state_file)}
        env.update({f"FAKE_KUBE_{name.upper()}": str(value) for name, value in settings.items()})
        return env

    def state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def calls(self) -> list[list[str]]:
        return self.state().get("calls", [])

    def objects(self) -> dict:
        return self.state().get("objects", {})


MYSQL_ADMIN_PASSWORD = "Adm1n-Pass_word-9"  # the DB system's administrator, as the stack's Vault secret holds it


def install(directory: Path, cluster_id: str, with_oci_cli: bool = True, database_ready: bool = False,
            mysql_admin_password: str = MYSQL_ADMIN_PASSWORD) -> FakeCluster:
    """The fake kubectl as `kubectl` in directory/bin; the real kubectl still renders (`kustomize`).
    `database_ready`: the database and its user exist already (an earlier deploy made them)."""
    real = shutil.which("kubectl")
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    state = directory / "cluster.json"
    state.write_text(json.dumps({"cluster_id": cluster_id, "objects": {}, "calls": [],
                                 "mysql": {"admin_password": mysql_admin_password, "database_ready": database_ready}}))
    script = bin_dir / "kubectl"
    script.write_text(f"#!/bin/sh\nFAKE_KUBE_REAL_KUBECTL='{real or ''}' exec '{sys.executable}' "
                      f"'{HERE / 'kubectl.py'}' \"$@\"\n")
    script.chmod(0o755)
    if with_oci_cli:
        oci = bin_dir / "oci"
        oci.write_text("#!/bin/sh\necho 'the fake cluster takes no token' >&2\nexit 1\n")
        oci.chmod(0o755)
    return FakeCluster(bin_dir, state)
