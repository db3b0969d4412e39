"""Where the docker/ runtime files and the wine example are: the repository checkout this package
runs from, or the copy bundled into the installed package."""
from dataclasses import dataclass
from pathlib import Path

from orm_pack.errors import UserError

_PACKAGE = Path(__file__).resolve().parents[1]
_CANDIDATES = (_PACKAGE.parents[1], _PACKAGE / "bundle")  # repo root (packager/orm_pack/..), bundle


@dataclass(frozen=True)
class RuntimeFiles:
    root: Path

    @property
    def tracking_entrypoint(self) -> Path:
        return self.root / "docker" / "tracking" / "entrypoint.sh"

    @property
    def init_db(self) -> Path:
        return self.root / "docker" / "tracking" / "init_db.py"

    @property
    def proxy_template(self) -> Path:
        return self.root / "docker" / "nginx" / "mlflow-proxy.conf.template"

    @property
    def proxy_render(self) -> Path:
        return self.root / "docker" / "nginx" / "render.sh"

    @property
    def proxy_tls(self) -> Path:
        return self.root / "docker" / "nginx" / "tls-self-signed.sh"

    @property
    def serving_supervisor(self) -> Path:
        return self.root / "docker" / "serving" / "supervisor.py"

    @property
    def wine_example(self) -> Path:
        return self.root / "examples" / "wine" / "train.py"

    def required(self) -> tuple[Path, ...]:
        return (self.tracking_entrypoint, self.proxy_template, self.proxy_render, self.serving_supervisor)


def find_runtime_files(candidates=_CANDIDATES) -> RuntimeFiles:
    for root in candidates:
        files = RuntimeFiles(Path(root))
        if all(path.is_file() for path in files.required()):
            return files
    raise UserError("the docker/ runtime files are not found next to orm_pack; run orm-pack from a checkout "
                    "of the oci-mlflow repository (pip install -e '.[local]')")
