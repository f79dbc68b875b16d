"""``--anomaly-webhook URL``: every anomaly flag POSTed to a SOC's endpoint when it is raised.

The body is the flag as JSON (``type``, ``user``, ``ip``, ``count_24h``,
``threshold_24h``, ``detected_at``, ``issuer``). Each request is signed:
``X-PassGeni-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` over
``"<t>.<body>"`` with the shared secret (``PASSGENI_ANOMALY_WEBHOOK_SECRET``,
never a flag), so the receiver checks the sender and refuses a replay (an
old ``t``). ``X-PassGeni-Delivery`` names the delivery: the same on every
retry, so the receiver can drop duplicates. A delivery is retried with
exponential backoff until a 2xx answer or its attempts run out (then logged).

Deliveries go from a thread of their own: raising a flag never waits on the
network, and the request path never does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

__all__ = ["AnomalyWebhook", "signature"]

log = logging.getLogger("passgeni_authority")


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-PassGeni-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class AnomalyWebhook:
    """Signed, retried deliveries of anomaly flags to one URL."""

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        issuer: str,
        attempts: int = 6,
        backoff: float = 1.0,
        timeout: float = 5.0,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("the anomaly webhook must be an http(s) URL")
        self.url = url
        self._secret = secret
        self.issuer = issuer
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="passgeni-webhook", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"AnomalyWebhook(url={self.url!r})"  # never the secret

    def send(self, flag: dict[str, Any]) -> None:
        """Queue ``flag`` for delivery (never blocks)."""
        self._queue.put({**flag, "issuer": self.issuer})

    def _run(self) -> None:
        while True:
            flag = self._queue.get()
            if flag is None:
                return
            self._deliver(flag)

    def _deliver(self, flag: dict[str, Any]) -> bool:
        body = json.dumps(flag, separators=(",", ":"), sort_keys=True).encode()
        delivery = str(uuid.uuid4())
        for attempt in range(self.attempts):
            timestamp = int(time.time())
            request = urllib.request.Request(  # noqa: S310 - an http(s) URL, checked above
                self.url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "passgeni-authority",
                    "X-PassGeni-Event": str(flag.get("type", "anomaly")),
                    "X-PassGeni-Delivery": delivery,
                    "X-PassGeni-Signature": signature(self._secret, timestamp, body),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                    if 200 <= answer.status < 300:
                        return True
                    status: Any = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (urllib.error.URLError, OSError) as exc:
                status = type(exc).__name__
            log.warning(
                "anomaly webhook delivery %s, attempt %d: %s", delivery, attempt + 1, status
            )
            if self._stop.wait(self.backoff * (2**attempt)):
                break
        log.error("anomaly webhook delivery %s gave up after %d attempts", delivery, self.attempts)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (waiting at most ``timeout``), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(1.0)
