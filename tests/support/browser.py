"""An interactive headless-Chromium page over the DevTools pipe (``tests.support.cdp``).

``Chromium.capture`` loads a page once; the browser pages of the authority (the
generator, the dashboard) need more: typing, clicking, waiting for an answer, cookies,
several viewports, and a record of every request the page makes (the ``Network``
domain's ``requestWillBeSent`` events, with headers and bodies), which is how the tests
prove a password never leaves the page.

    with BrowserPage.open(chromium) as page:
        page.goto(url)
        page.fill("#length", "24"); page.click("#generate")
        page.wait_for("document.getElementById('password').textContent !== ''")
        page.requests  # every request since the last page.clear_requests()
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cdp import DevToolsPipe, pipe_fds, place_child_fds
from tests.support.chromium import Chromium
from tests.support.process import (
    ServerError,
    WaitTimeoutError,
    child_env,
    kill_group,
    log_tail,
    register_process,
)

__all__ = ["DESKTOP", "MOBILE", "BrowserPage", "SeenRequest"]

DESKTOP = (1280, 800)
MOBILE = (390, 844)


@dataclass(frozen=True)
class SeenRequest:
    """One request the page made, as the browser sent it."""

    url: str
    method: str
    headers: dict[str, str]
    body: str

    def carries(self, secret: str) -> bool:
        """Whether ``secret`` appears anywhere in the request (URL, headers or body)."""
        return (
            secret in self.url
            or secret in self.body
            or any(secret in k or secret in v for k, v in self.headers.items())
        )


class BrowserPage:
    """One tab of a fresh headless Chromium, driven over the DevTools pipe."""

    def __init__(self, devtools: DevToolsPipe, session: str, log_path: Path) -> None:
        self._devtools = devtools
        self._session = session
        self._log_path = log_path
        self._requests: list[SeenRequest] = []
        self.console_errors: list[str] = []

    @classmethod
    @contextmanager
    def open(cls, chromium: Chromium, *, timeout: float = 120.0) -> Iterator[BrowserPage]:
        chromium.start()
        assert chromium.executable is not None
        profile, log_path = chromium.new_run()
        (parent_write, child_read), (parent_read, child_write) = pipe_fds()
        argv = [
            chromium.executable,
            *chromium.FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=chromium.workdir,
                env=child_env(HOME=str(chromium.workdir)),
                start_new_session=True,
                pass_fds=(3, 4),
                preexec_fn=lambda: place_child_fds(child_read, child_write),
            )
        os.close(child_read)
        os.close(child_write)
        register_process(proc)
        devtools = DevToolsPipe(parent_write, parent_read, deadline=time.monotonic() + timeout)
        try:
            target = devtools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = devtools.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"
            ]
            page = cls(devtools, session, log_path)
            for domain in ("Page", "Runtime", "Network"):
                page.send(f"{domain}.enable")
            page.viewport(*DESKTOP)
            yield page
        except ServerError as exc:
            raise ServerError(f"{exc}\n--- tail of {log_path} ---\n{log_tail(log_path)}") from exc
        finally:
            devtools.close()
            kill_group(proc, sig=signal.SIGTERM, grace=2.0)
            shutil.rmtree(profile, ignore_errors=True)

    # -- protocol -----------------------------------------------------------------------

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        result = self._devtools.send(method, params, session_id=self._session)
        self._collect()
        return result

    def _collect(self) -> None:
        for event in self._devtools.take_events(self._session):
            method = event.get("method")
            params = event.get("params", {})
            if method == "Network.requestWillBeSent":
                request = params["request"]
                self._requests.append(
                    SeenRequest(
                        url=request["url"],
                        method=request["method"],
                        headers={str(k): str(v) for k, v in request.get("headers", {}).items()},
                        body=str(request.get("postData", "")),
                    )
                )
            elif method == "Runtime.exceptionThrown":
                self.console_errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])

    # -- page -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[SeenRequest]:
        """Every request the page made since the last :meth:`clear_requests`."""
        self._collect()
        return list(self._requests)

    def clear_requests(self) -> None:
        self._collect()
        self._requests.clear()

    def grant_clipboard(self, origin: str) -> None:
        """Let ``origin`` read and write the clipboard (and act as the focused page)."""
        self._devtools.send(
            "Browser.grantPermissions",
            {"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"], "origin": origin},
        )
        self.send("Emulation.setFocusEmulationEnabled", {"enabled": True})

    def viewport(self, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )

    def goto(self, url: str) -> None:
        navigated = self.send("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise ServerError(f"chromium could not load {url}: {navigated['errorText']}")
        self._devtools.wait_for("Page.loadEventFired", session_id=self._session)
        self._collect()

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page (promises awaited)."""
        answer = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise AssertionError(f"page script failed: {text}")
        return answer["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except AssertionError:  # the page is navigating: its context went away
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise WaitTimeoutError(f"the page never satisfied: {expression}")
            time.sleep(0.05)

    def fill(self, selector: str, value: str) -> None:
        self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            f" e.value = {json.dumps(value)};"
            " e.dispatchEvent(new Event('input', {bubbles: true}));"
            " e.dispatchEvent(new Event('change', {bubbles: true})); })()"
        )

    def click(self, selector: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def navigate_by(self, selector: str, path: str) -> None:
        """Click ``selector`` (a link, a submit button) and wait until ``path`` has loaded."""
        self.evaluate("window.__passgeniOldPage = true")
        self.click(selector)
        self.wait_for(
            "!window.__passgeniOldPage && document.readyState === 'complete'"
            f" && location.pathname === {json.dumps(path)}"
        )

    def text(self, selector: str = "body") -> str:
        value = self.evaluate(f"document.querySelector({json.dumps(selector)}).innerText")
        return str(value)

    def cookies(self) -> list[dict[str, Any]]:
        cookies: list[dict[str, Any]] = self.send("Network.getCookies")["cookies"]
        return cookies

    def screenshot(self, path: Path) -> Path:
        """A full-page PNG at ``path``."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        width = self.evaluate("window.innerWidth")
        clip = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
        png = self.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(png))
        return path
