"""The proxy's login: generated once per state directory, stored 0600, written as a bcrypt htpasswd."""
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import bcrypt

# bcrypt's lowest cost (htpasswd -B uses 5). nginx checks the hash on every request, so the cost is
# paid per API call; the generated passwords are random (144 bits), which a higher cost would not
# make any harder to guess.
BCRYPT_ROUNDS = 4


# With MLflow's own users the model endpoint logs in as a non-admin user of its own, as on the stack
# (docker/tracking/service_users.py creates it).
SERVING_USERNAME = "mlflow-serving"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def generate(username: str = "mlflow") -> Credentials:
    return Credentials(username, secrets.token_urlsafe(18))


def save(credentials: Credentials, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was there before
    with os.fdopen(fd, "w") as handle:
        json.dump({"username": credentials.username, "password": credentials.password}, handle)


def load(path: Path) -> Credentials | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Credentials(data["username"], data["password"])


def signing_key(path: Path) -> str:
    """The key MLflow signs its UI's CSRF tokens with (per-person users): made once, kept 0600."""
    if path.is_file():
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def write_htpasswd(credentials: Credentials, path: Path, rounds: int = BCRYPT_ROUNDS) -> None:
    hashed = bcrypt.hashpw(credentials.password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{credentials.username}:{hashed}\n")
    path.chmod(0o644)  # nginx workers read it per request, possibly as another user
