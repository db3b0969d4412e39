"""The lane's one test CA, as a stack's CA in OCI Certificates: it issues the auth proxies' certificates and
MariaDB's, and every client of them verifies with its certificate (CA_FILE), as users do with the file
`orm-pack apply` saves. Made when this module is first imported in a test process, removed at its exit."""
import atexit
import shutil
import tempfile
from pathlib import Path

from harness.certificates import Authority, write_pair

AUTHORITY = Authority("oci-mlflow dataplane test CA")
_DIRECTORY = Path(tempfile.mkdtemp(prefix="dataplane-ca-"))
_DIRECTORY.chmod(0o755)  # a CA certificate is public: the serving tests run clients as other users
atexit.register(shutil.rmtree, _DIRECTORY, ignore_errors=True)
CA_FILE = AUTHORITY.write(_DIRECTORY / "ca.pem")


def issue_pair(directory: Path, name: str, address: str = "127.0.0.1",
               authority: Authority = AUTHORITY) -> tuple[str, str]:
    """A certificate for `address` (its IP SAN and its common name: nginx checks proxy_ssl_name against the
    common name, Python against the IP SAN) and its key, from `authority`, as directory/name.crt and .key."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = authority.issue(addresses=(address,), common_name=address)
    return write_pair(cert, key, directory / f"{name}.crt", directory / f"{name}.key")
