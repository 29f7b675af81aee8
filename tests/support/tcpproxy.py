"""A loopback TCP proxy the tests can cut or freeze, to play a failing network to the broker."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``.

    ``cut(seconds)`` drops every connection and refuses new ones for a while;
    ``freeze(n)`` stops forwarding on the n-th connection (1-based) without closing it.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._connections: list[tuple[socket.socket, socket.socket]] = []
        self._frozen: set[int] = set()
        self._refuse_until = 0.0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, user: str = "guest", password: str = "guest") -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}//"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._refuse_until:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._connections.append((client, upstream))
                index = len(self._connections)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(index, src, dst), daemon=True).start()

    def _pump(self, index: int, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                while index in self._frozen:
                    time.sleep(0.05)
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def freeze(self, index: int) -> None:
        self._frozen.add(index)

    def cut(self, seconds: float) -> None:
        self._refuse_until = time.monotonic() + seconds
        with self._lock:
            for pair in self._connections:
                for s in pair:
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self._frozen.clear()
        self.cut(0)
        self._listener.close()
