"""The state directory of `orm-pack local`: data, logs, proxy files and the record of what runs."""
import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceRecord:
    name: str
    pid: int
    start_time: int          # /proc/<pid>/stat start time: tells our process from a reused pid
    log: str
    url: str = ""


class StateDir:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    data = property(lambda self: self.root / "data")
    logs = property(lambda self: self.root / "logs")
    nginx = property(lambda self: self.root / "nginx")
    tls = property(lambda self: self.root / "tls")
    # the local CA (certificates.py): what clients verify with, and its key (0600)
    ca_file = property(lambda self: self.root / "ca.pem")
    ca_key_file = property(lambda self: self.root / "ca-key.pem")
    server_cert_file = property(lambda self: self.root / "tls" / "server.pem")  # the proxy's, from the CA
    server_key_file = property(lambda self: self.root / "tls" / "server-key.pem")
    credentials_file = property(lambda self: self.root / "credentials.json")
    # per-person: the model endpoint's own MLflow user (never the admin's login)
    serving_credentials_file = property(lambda self: self.root / "serving-credentials.json")
    htpasswd_file = property(lambda self: self.root / "nginx" / "htpasswd")
    services_file = property(lambda self: self.root / "services.json")
    settings_file = property(lambda self: self.root / "settings.json")
    signing_key_file = property(lambda self: self.root / "signing-key")  # per-person: the UI's CSRF tokens

    def create(self) -> None:
        for directory in (self.root, self.data, self.logs, self.nginx, self.tls):
            directory.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # holds the generated password

    def save_services(self, records: list[ServiceRecord]) -> None:
        self.services_file.write_text(json.dumps([asdict(record) for record in records], indent=2))

    def load_services(self) -> list[ServiceRecord]:
        if not self.services_file.is_file():
            return []
        return [ServiceRecord(**item) for item in json.loads(self.services_file.read_text())]

    def clear_services(self) -> None:
        self.services_file.unlink(missing_ok=True)

    def save_settings(self, settings: dict) -> None:
        """What `up` was asked to serve, for the commands that come after it (doctor)."""
        self.settings_file.write_text(json.dumps(settings, indent=2))

    def load_settings(self) -> dict:
        return json.loads(self.settings_file.read_text()) if self.settings_file.is_file() else {}
