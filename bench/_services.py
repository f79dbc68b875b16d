"""Services for the Terraform and rotation benchmarks: a warm authority in its own process.

The authority runs as a separate process (the embedded app under uvicorn,
SQLite, no rate limits) so the benchmark's own threads do not share its GIL;
OpenBao comes from ``tests/_servers.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_SERVE = """
import json, sys, time
from passgeni_authority.embedded import EmbeddedAuthority
with EmbeddedAuthority(state_dir=sys.argv[1]) as a:
    print(json.dumps({"url": a.base_url, "api_key": a.api_key, "issuer": a.issuer}), flush=True)
    sys.stdin.read()
"""


@dataclass
class Authority:
    url: str
    api_key: str
    issuer: str


@contextmanager
def authority_process() -> Iterator[Authority]:
    with tempfile.TemporaryDirectory(prefix="passgeni-bench-") as state:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, state],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            yield Authority(**info)
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
