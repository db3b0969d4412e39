"""A loopback address that stays the deployment's while what answers behind it changes: what a reserved public
IP (a VM's) or a load balancer's address (OKE's) is on OCI, where a replaced VM or a new rollout takes over the
same address and nothing else can.

The doubles of the tracking VM and of the OKE nodes start a new proxy for each boot or rollout. Started on one
fixed port, each proxy would leave the port free between boots, and on a busy machine another test's server
could take it: a health gate then reached that server and got its 401. Here the port is bound for the double's
whole life; each connection is relayed to the proxy of the moment, and refused (closed at once, as a VNIC-less
IP answers nothing) while there is none.
"""
from __future__ import annotations

import socket
import threading


class ReservedAddress:
    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        self._target: int | None = None
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def point_at(self, port: int | None) -> None:
        """New connections go to 127.0.0.1:port from now on (None: refused)."""
        self._target = port

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client, self._target), daemon=True).start()

    @staticmethod
    def _relay(client: socket.socket, port: int | None) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10) if port else None
        except OSError:
            upstream = None
        if upstream is None:
            client.close()
            return
        upstream.settimeout(None)
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        source.close()
