"""Loaded by Python child processes of unit tests (the guard puts this directory on
``PYTHONPATH``): a child that binds or listens on a socket is serving, which the unit
tier does not do. ``bind`` counts too because uvloop listens in C, past ``socket.listen``;
the one bind let through is urllib3's IPv6 probe (``("::1", 0)``, closed at once). The refusal is written to ``$UNIT_SERVER_GUARD_LOG`` so the test
fails even when the child swallows the error."""

from __future__ import annotations

import os
import socket

_LOG = os.environ.get("UNIT_SERVER_GUARD_LOG")


def _refuse(what: str) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"child process {os.getpid()}: {what}\n")
    raise OSError(f"unit tests start no servers ({what}): move the test to tests/integration")


_IPV6_PROBE = ("::1", 0)
_bind_unguarded = socket.socket.bind


def _bind(self: socket.socket, address: object) -> None:
    if address == _IPV6_PROBE:
        _bind_unguarded(self, address)
        return
    _refuse(f"socket.bind({address!r})")


def _listen(self: socket.socket, *backlog: int) -> None:
    _refuse("socket.listen()")


if _LOG:
    socket.socket.bind = _bind
    socket.socket.listen = _listen
