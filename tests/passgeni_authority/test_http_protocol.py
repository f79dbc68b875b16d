"""The served HTTP protocol (``_http``): issuance answers leave in one write.

uvicorn writes a response's head and body separately; the hot endpoints ask
for the head to be held and joined to the body. Every other response must be
written exactly as uvicorn writes it, and nothing held may ever be lost.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
import requests

from passgeni_authority import AuthoritySettings
from passgeni_authority._http import _HeldTransport
from passgeni_authority.embedded import EmbeddedAuthority


class _Recorder:
    """A transport that records what is written to it."""

    def __init__(self, writes: list[bytes]) -> None:
        self.writes = writes
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def test_held_head_goes_out_with_the_body_and_nothing_else_is_held() -> None:
    writes: list[bytes] = []
    transport = _HeldTransport(cast(asyncio.Transport, _Recorder(writes)))  # a stand-in
    transport.write(b"plain")
    transport.hold_next()
    transport.write(b"HEAD\r\n\r\n")
    assert writes == [b"plain"]
    transport.write(b"BODY")
    transport.write(b"more")
    assert writes == [b"plain", b"HEAD\r\n\r\nBODY", b"more"]
    # A held head is written before the connection closes, never dropped.
    transport.hold_next()
    transport.write(b"LAST")
    transport.close()
    assert writes[-1] == b"LAST"
    assert transport.get_extra_info("peername", "x") == "x"  # everything else delegates


@pytest.fixture
def recorded(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An embedded authority whose connections record every socket write."""
    writes: list[bytes] = []
    original = _HeldTransport.__init__

    class Recording:
        def __init__(self, transport: Any) -> None:
            self._transport = transport

        def write(self, data: bytes) -> None:
            writes.append(bytes(data))
            self._transport.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._transport, name)

    def init(self: _HeldTransport, transport: Any) -> None:
        original(self, cast(asyncio.Transport, Recording(transport)))  # records, then delegates

    monkeypatch.setattr(_HeldTransport, "__init__", init)
    with EmbeddedAuthority(settings=AuthoritySettings(state_dir=tmp_path)) as embedded:
        yield embedded, writes


def test_issuance_answers_are_one_write_and_others_unchanged(recorded: Any) -> None:
    embedded, writes = recorded
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {embedded.api_key}"
    r = http.post(
        f"{embedded.base_url}/api/generate", json={"compliance_standard": "soc2"}, timeout=10
    )
    assert r.status_code == 200, r.text
    answer = [w for w in writes if w.startswith(b"HTTP/1.1 200")]
    assert len(answer) == 1 and answer[0].endswith(r.content)  # head and body together
    sid = r.json()["generation_session_id"]
    writes.clear()
    r = http.post(
        f"{embedded.base_url}/api/generate-certificate",
        json={"generation_session_id": sid},
        timeout=10,
    )
    assert r.status_code == 201 and len(writes) == 1 and writes[0].endswith(r.content)
    # An error answer of a hot endpoint is one write too.
    writes.clear()
    r = http.post(
        f"{embedded.base_url}/api/generate-certificate",
        json={"generation_session_id": sid},
        timeout=10,
    )
    assert r.status_code == 409 and len(writes) == 1
    # Other endpoints are written as uvicorn writes them: head, then body.
    writes.clear()
    r = http.get(f"{embedded.base_url}/healthz", timeout=10)
    assert r.status_code == 200 and len(writes) == 2 and writes[1] == r.content
    writes.clear()
    r = http.get(f"{embedded.base_url}/api/nothing-here", timeout=10)
    assert r.status_code == 404 and len(writes) == 2 and writes[1] == r.content
