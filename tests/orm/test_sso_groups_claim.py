"""`orm-pack sso groups-claim` against the fake's identity domain (tests/ormfake/identitydomain.py): the
request is signed with the user's API key, only an Identity Domain Administrator may make it, the claim is
added once and a second run leaves the domain alone, a same-named claim with another value is not
overwritten."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.readme import block_starting, fill
from ormfake import write_oci_config
from ormfake.testing import REGION, cli_env

DOMAIN = "https://idcs-0123456789abcdef0123456789abcdef.identity.oraclecloud.com"


@pytest.fixture
def claim(tmp_path, oci_config, fake):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)

    def run(*extra):
        command = [sys.executable, "-m", "orm_pack.cli", "sso", "groups-claim", "--domain-url", f"{DOMAIN}:443",
                   "--domain-endpoint", fake.url, "--config-file", str(oci_config), *extra]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                              env=cli_env(home, None), stdin=subprocess.DEVNULL)

    return run


def test_an_administrator_adds_the_groups_claim_once(claim, fake, api_key):
    fake.domain_admins.add(api_key.key_id)
    first = claim()
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (f"{DOMAIN} added the custom claim groups: the names of a person's groups "
                                    "($user.groups.*.display) in its ID and access tokens")
    (made,) = fake.custom_claims.values()
    assert {k: made[k] for k in ("name", "value", "expression", "mode", "tokenType", "allScopes")} == {
        "name": "groups", "value": "$user.groups.*.display", "expression": True, "mode": "always",
        "tokenType": "BOTH", "allScopes": True}
    again = claim()
    assert again.returncode == 0 and " already has the custom claim groups" in again.stdout
    assert len(fake.custom_claims) == 1
    assert [m for m, p, _ in fake.requests if p == "/admin/v1/CustomClaims"] == ["GET", "POST", "GET"]


def test_someone_who_is_not_a_domain_administrator_is_told_who_may(claim, fake):
    result = claim()
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"orm-pack: error: the identity domain {fake.url} refused to list its custom claims (403: Insufficient "
        "privileges: the caller is not an Identity Domain Administrator): custom claims are a domain-wide setting "
        "only an Identity Domain Administrator may change; run this with such a user's API key, or ask one to")
    assert fake.custom_claims == {}


def test_a_claim_of_that_name_with_another_value_is_left_alone(claim, fake, api_key):
    fake.domain_admins.add(api_key.key_id)
    fake.custom_claims["x"] = {"id": "x", "name": "groups", "value": "$user.name.formatted", "expression": True}
    result = claim()
    assert result.returncode == 1
    assert "already has a custom claim named groups with another value ('$user.name.formatted')" in result.stderr
    assert "--claim-name" in result.stderr
    other = claim("--claim-name", "mlflow_groups")
    assert other.returncode == 0, other.stderr
    assert sorted(c["name"] for c in fake.custom_claims.values()) == ["groups", "mlflow_groups"]


@pytest.mark.parametrize("args, message", [
    (["--domain-url", "https://cloud.oracle.com/identity"], "is not an identity domain's Domain URL"),
    (["--claim-name", "my groups"], "--claim-name 'my groups': a claim name is a letter"),
])
def test_bad_input_is_refused_before_any_request(claim, fake, api_key, args, message):
    fake.domain_admins.add(api_key.key_id)
    result = claim(*args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert fake.requests == []


def test_an_unsigned_request_is_refused_by_the_fake(fake):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(fake.url + "/admin/v1/CustomClaims", timeout=10)
    assert refused.value.code == 401


def test_the_readme_command_adds_the_claim(tmp_path, fake, api_key):
    """README's block as a domain administrator runs it: their ~/.oci/config, orm-pack on PATH."""
    fake.domain_admins.add(api_key.key_id)
    home = tmp_path / "home"
    write_oci_config(home / ".oci", api_key, region=REGION)
    line = fill(block_starting("orm-pack sso groups-claim"), {"<id>": DOMAIN.split("idcs-")[1].split(".")[0]})
    orm_pack_dir = Path(shutil.which("orm-pack", path=str(Path(sys.executable).parent))).parent
    env = cli_env(home, {"PATH": f"{orm_pack_dir}{os.pathsep}{os.environ['PATH']}"})
    result = subprocess.run(["bash", "-e", "-c", line.strip() + f" --domain-endpoint {fake.url}"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert [c["name"] for c in fake.custom_claims.values()] == ["groups"]
