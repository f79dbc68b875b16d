"""One page load in headless Chromium, driven over the DevTools protocol on a pipe.

``--dump-dom`` gives markup, not what a reader sees. To assert on the rendered text
(``document.body.innerText``: what CSS shows, in reading order) and to take a
full-page screenshot, the browser is started with ``--remote-debugging-pipe``: it
reads protocol commands on fd 3 and writes answers and events on fd 4, each a JSON
message ended by a NUL byte. No port, no WebSocket library, and the page under test
needs no script of its own (DevTools evaluation runs outside the page's CSP).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.process import ServerError, WaitTimeoutError

__all__ = ["DevToolsPipe", "PageCapture", "pipe_fds"]

#: The fds Chromium's ``--remote-debugging-pipe`` reads commands from and writes to.
_CHILD_IN, _CHILD_OUT = 3, 4


@dataclass(frozen=True)
class PageCapture:
    """What one load of a page showed."""

    url: str
    #: ``document.body.innerText`` after the load event.
    text: str
    #: ``document.title``.
    title: str
    #: The full-page PNG, when one was asked for.
    screenshot: Path | None


def pipe_fds() -> tuple[tuple[int, int], tuple[int, int]]:
    """Two pipes for the child: ``(parent_write, child_read)``, ``(parent_read, child_write)``.

    The child's ends are duplicated above fd 10 so that placing them on fds 3 and 4
    in the child (:func:`place_child_fds`) never overwrites one with the other.
    """
    cmd_read, cmd_write = os.pipe()
    evt_read, evt_write = os.pipe()
    high_cmd = fcntl.fcntl(cmd_read, fcntl.F_DUPFD, 10)
    high_evt = fcntl.fcntl(evt_write, fcntl.F_DUPFD, 10)
    os.close(cmd_read)
    os.close(evt_write)
    return (cmd_write, high_cmd), (evt_read, high_evt)


def place_child_fds(child_read: int, child_write: int) -> None:
    """In the child, before exec: the pipe ends on fds 3 and 4 (``preexec_fn``)."""
    os.dup2(child_read, _CHILD_IN)
    os.dup2(child_write, _CHILD_OUT)


class DevToolsPipe:
    """The parent's side of ``--remote-debugging-pipe``: send commands, read answers."""

    def __init__(self, write_fd: int, read_fd: int, *, deadline: float) -> None:
        self._write = write_fd
        self._read = read_fd
        self._deadline = deadline
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def close(self) -> None:
        for fd in (self._write, self._read):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeoutError("chromium: no DevTools answer before the deadline")
            ready, _, _ = select.select([self._read], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise ServerError("chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, **where: str) -> Any:
        """Run one command (``session_id=`` for a page's session); its ``result``."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if "session_id" in where:
            message["sessionId"] = where["session_id"]
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._message()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise ServerError(f"chromium: {method} failed: {answer['error']}")
                return answer.get("result", {})
            if "method" in answer:
                self._events.append(answer)

    def take_events(self, session_id: str) -> list[dict[str, Any]]:
        """The session's events read so far (removed from the queue)."""
        taken = [e for e in self._events if e.get("sessionId") == session_id]
        self._events = [e for e in self._events if e.get("sessionId") != session_id]
        return taken

    def wait_for(self, method: str, *, session_id: str) -> dict[str, Any]:
        """The first event ``method`` of the session (events seen earlier count)."""
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session_id:
                    del self._events[i]
                    return event
            message = self._message()
            if "method" in message:
                self._events.append(message)

    def capture(
        self,
        url: str,
        *,
        screenshot: Path | None,
        width: int,
        height: int,
        media: str | None,
    ) -> PageCapture:
        """Load ``url`` in a new tab; its text, title and (optionally) a full-page PNG."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.send("Page.enable", session_id=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session_id=session,
        )
        if media is not None:
            self.send("Emulation.setEmulatedMedia", {"media": media}, session_id=session)
        navigated = self.send("Page.navigate", {"url": url}, session_id=session)
        if navigated.get("errorText"):
            raise ServerError(f"chromium could not load {url}: {navigated['errorText']}")
        self.wait_for("Page.loadEventFired", session_id=session)
        values = self.send(
            "Runtime.evaluate",
            {
                "expression": "JSON.stringify([document.body.innerText, document.title])",
                "returnByValue": True,
            },
            session_id=session,
        )
        text, title = json.loads(values["result"]["value"])
        shot = None
        if screenshot is not None:
            # The whole page, not the window: clip to the content's size.
            size = self.send("Page.getLayoutMetrics", session_id=session)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
            png = self.send(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True, "clip": clip},
                session_id=session,
            )["data"]
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(png))
            shot = screenshot
        return PageCapture(url=url, text=text, title=title, screenshot=shot)
