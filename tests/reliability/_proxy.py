"""A TCP proxy on 127.0.0.1 that can go down and come back, and record what clients send.

* ``down()``: the listening socket is closed and every open connection is
  cut, so clients get exactly what a stopped server gives them (connection
  refused, or a reset on a pooled connection) while the real server behind
  keeps its data (OpenBao dev, moto and the kmock emulator lose everything
  when really stopped, so a real restart could not show what survived).
* ``up()``: listen again on the same port.
* ``recorded``: every byte clients sent (``record=True``), for leak checks.
* ``cut_answers(marker, n)``: the next ``n`` connections whose request holds
  ``marker`` have their server's answer swallowed and the connection cut: the
  server did the work, the client never hears of it (a lost answer).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

from tests.support import free_port


class TcpProxy:
    def __init__(self, upstream_port: int, *, record: bool = False, port: int | None = None):
        self.upstream_port = upstream_port
        self.port = port if port is not None else free_port()
        self.record = record
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self.connections = 0
        self._cut_marker = b""
        self._cuts_left = 0
        #: Answers swallowed so far (see cut_answers).
        self.cut = 0

    def cut_answers(self, marker: bytes, count: int = 1) -> None:
        with self._lock:
            self._cut_marker, self._cuts_left = marker, count

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def recorded(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)

    def __enter__(self) -> Self:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._listener is not listener:
                client.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns.update((client, upstream))
                self.connections += 1
            state = {"cut": False}
            threading.Thread(
                target=self._pump, args=(client, upstream, True, state), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, False, state), daemon=True
            ).start()

    def _pump(
        self, src: socket.socket, dst: socket.socket, outbound: bool, state: dict[str, bool]
    ) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if outbound:
                    with self._lock:
                        if self.record:
                            self._chunks.append(data)
                        if self._cuts_left and self._cut_marker in data:
                            self._cuts_left -= 1
                            state["cut"] = True
                elif state["cut"]:
                    with self._lock:
                        self.cut += 1
                    break  # the answer is swallowed; both sockets are closed below
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
