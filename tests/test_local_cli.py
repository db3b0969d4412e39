"""`orm-pack local` as a new user meets it: a port a stopped server left in TIME_WAIT is free again, the
state lives in one per-user place whatever the current directory, and the help says what `up` leaves
running and where the login is."""
import socket
import subprocess
import sys

from orm_pack.commands.local import default_state_dir
from orm_pack.local.ports import port_is_free


def test_a_port_in_time_wait_is_free_for_a_new_server():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx listens
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server closes first: its side of the connection waits in TIME_WAIT
    client.close()
    listener.close()
    with socket.socket() as plain:  # what the old check did: refused while TIME_WAIT lasts (about 60 s)
        try:
            plain.bind(("127.0.0.1", port))
            lingering = False
        except OSError:
            lingering = True
    assert lingering, "no TIME_WAIT was produced: the test proves nothing"
    assert port_is_free(port)


def test_a_port_with_a_listener_is_not_free():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert not port_is_free(busy.getsockname()[1])


def test_the_state_directory_is_per_user_not_per_directory(tmp_path):
    assert default_state_dir({"XDG_STATE_HOME": "/srv/state"}).as_posix() == "/srv/state/orm-pack/local"
    home = tmp_path / "home"
    answers = []
    for cwd in (tmp_path, home.parent.parent):
        result = subprocess.run([sys.executable, "-m", "orm_pack.cli", "local", "status"], cwd=cwd,
                                capture_output=True, text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
        answers.append(result.stdout.strip())
    assert answers == [f"not running (no services recorded in {home}/.local/state/orm-pack/local)"] * 2


def test_up_says_what_it_leaves_running_and_where_the_login_is():
    result = subprocess.run([sys.executable, "-m", "orm_pack.cli", "local", "up", "--help"], capture_output=True,
                            text=True)
    text = " ".join(result.stdout.split())
    assert "keep running after this command ends, until `orm-pack local down`" in text
    assert "STATE_DIR/credentials.json" in text and "--json" in text
