"""Headless Chromium (``/usr/bin/chromium``), one browser process per call."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.support.cdp import DevToolsPipe, PageCapture, pipe_fds, place_child_fds
from tests.support.process import (
    ServerError,
    WaitTimeoutError,
    child_env,
    kill_group,
    log_tail,
    make_temp_dir,
    register_process,
    remove_temp_dir,
)


def find_chromium() -> str:
    """``/usr/bin/chromium`` (Debian package), else ``chromium``/``chromium-browser`` on PATH."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise ServerError("chromium not found: run `bash scripts/install-sysdeps.sh` (or make sysdeps)")


class Chromium:
    """Headless Chromium runs: one short-lived browser process per call.

    Each call uses a fresh empty ``--user-data-dir``, its own process group
    and a timeout (the group is killed on timeout). stderr goes to
    ``workdir/chromium-N.log`` (removed by ``close()``).

    Attributes: ``executable``, ``workdir``; methods ``dump_dom``, ``screenshot``,
    ``capture`` (rendered text and a full-page PNG, over the DevTools pipe).
    """

    FLAGS: tuple[str, ...] = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-crash-reporter",
        "--disable-breakpad",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--no-proxy-server",
        "--hide-scrollbars",
        "--mute-audio",
    )

    def __init__(self, *, executable: str | None = None, timeout: float = 60.0) -> None:
        self.executable = executable
        self.timeout = timeout
        self._workdir: Path | None = None
        self._counter = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            self._workdir = make_temp_dir("chromium")
        return self._workdir

    def start(self) -> None:
        """Locate the browser (no process stays running between calls)."""
        self.executable = self.executable or find_chromium()

    def close(self) -> None:
        if self._workdir is not None:
            remove_temp_dir(self._workdir)
            self._workdir = None

    def new_run(self) -> tuple[Path, Path]:
        """A fresh profile directory and log file for one browser run (for other drivers)."""
        return self._new_run()

    def _new_run(self) -> tuple[Path, Path]:
        """A fresh profile directory and log file for one browser run (started if need be)."""
        if self.executable is None:
            self.start()
        assert self.executable is not None
        with self._lock:
            self._counter += 1
            number = self._counter
        profile = self.workdir / f"profile-{number}"
        profile.mkdir()
        return profile, self.workdir / f"chromium-{number}.log"

    def run(self, args: Sequence[str], *, timeout: float | None = None) -> str:
        """Run ``chromium FLAGS... ARGS``, return stdout; :class:`ServerError` on failure."""
        profile, log_path = self._new_run()
        assert self.executable is not None
        argv = [self.executable, *self.FLAGS, f"--user-data-dir={profile}", *args]
        limit = timeout if timeout is not None else self.timeout
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=self.workdir,
                env=child_env(HOME=str(self.workdir)),
                start_new_session=True,
            )
            register_process(proc)
            try:
                stdout, _ = proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired as exc:
                kill_group(proc, sig=signal.SIGKILL, grace=0.0)
                raise WaitTimeoutError(
                    f"chromium timed out after {limit:.0f} s: {' '.join(args)}\n"
                    f"--- tail of {log_path} ---\n{log_tail(log_path)}"
                ) from exc
            finally:
                # Helpers (zygote, renderers) share the group: never let them outlive the call.
                kill_group(proc, sig=signal.SIGTERM, grace=2.0)
        shutil.rmtree(profile, ignore_errors=True)
        if proc.returncode != 0:
            raise ServerError(
                f"chromium exited with {proc.returncode}: {' '.join(args)}\n"
                f"--- tail of {log_path} ---\n{log_tail(log_path)}"
            )
        return stdout.decode("utf-8", errors="replace")

    def dump_dom(self, url: str, *, timeout: float | None = None) -> str:
        """The serialized DOM of ``url`` after load (``--dump-dom``)."""
        return self.run(["--dump-dom", url], timeout=timeout)

    def screenshot(
        self,
        url: str,
        path: Path | str,
        *,
        window_size: tuple[int, int] = (1280, 800),
        timeout: float | None = None,
    ) -> Path:
        """Save a PNG screenshot of ``url`` to ``path``; returns the path."""
        target = Path(path).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        width, height = window_size
        self.run(
            [f"--screenshot={target}", f"--window-size={width},{height}", url],
            timeout=timeout,
        )
        if not target.is_file() or target.stat().st_size == 0:
            raise ServerError(f"chromium wrote no screenshot to {target}")
        return target

    def capture(
        self,
        url: str,
        *,
        screenshot: Path | str | None = None,
        window_size: tuple[int, int] = (1280, 800),
        media: str | None = None,
        timeout: float | None = None,
    ) -> PageCapture:
        """Load ``url``: its rendered text (``document.body.innerText``), its title and,
        with ``screenshot``, a full-page PNG there. ``media="print"`` renders it as
        printed (the page's ``@media print`` rules)."""
        profile, log_path = self._new_run()
        assert self.executable is not None
        (parent_write, child_read), (parent_read, child_write) = pipe_fds()
        argv = [
            self.executable,
            *self.FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        limit = timeout if timeout is not None else self.timeout
        width, height = window_size
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.workdir,
                env=child_env(HOME=str(self.workdir)),
                start_new_session=True,
                pass_fds=(3, 4),
                preexec_fn=lambda: place_child_fds(child_read, child_write),
            )
        os.close(child_read)
        os.close(child_write)
        register_process(proc)
        devtools = DevToolsPipe(parent_write, parent_read, deadline=time.monotonic() + limit)
        try:
            return devtools.capture(
                url,
                screenshot=None if screenshot is None else Path(screenshot).resolve(),
                width=width,
                height=height,
                media=media,
            )
        except ServerError as exc:
            raise ServerError(f"{exc}\n--- tail of {log_path} ---\n{log_tail(log_path)}") from exc
        finally:
            devtools.close()
            kill_group(proc, sig=signal.SIGTERM, grace=2.0)
            shutil.rmtree(profile, ignore_errors=True)
