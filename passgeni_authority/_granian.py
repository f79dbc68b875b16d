"""``serve --server granian``: the authority under granian, with bounded headers.

uvicorn's HTTP/1 parser (httptools) has no public setting for the size, count or
arrival time of a request's headers: a client can hold a connection open with
megabytes of unfinished headers. granian (hyper underneath) bounds all three:
headers over its read buffer or more than 100 of them answer 431, and headers
not complete within the header timeout close the connection. Bodies are bounded by
the app itself on either server (``_issuance_http.read_body``: 413 and 408).

granian runs its own worker processes and restarts one that dies; each builds its
app from the ``serve`` options the parent put in the environment
(``cli.worker_app``), like the uvicorn workers of :mod:`._workers`.
"""

from __future__ import annotations

__all__ = ["serve_granian"]


def serve_granian(
    target: str,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    header_timeout_seconds: float,
    header_buffer_bytes: int,
) -> int:
    """Serve the app factory ``target`` until interrupted; the exit status."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    Granian(
        target,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=workers,
        respawn_failed_workers=True,
        log_level=LogLevels(log_level),
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, int(header_timeout_seconds * 1000)),
            max_buffer_size=header_buffer_bytes,
        ),
    ).serve()
    return 0
