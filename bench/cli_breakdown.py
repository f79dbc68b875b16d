"""Where a CLI process's time goes: imports by library, and each HTTP round trip.

Used by ``bench_cli.py --breakdown``. Two probes, each a fresh interpreter that
runs the real CLI:

* ``python -X importtime``: the self time of every import, summed by library
  (the ``passgeni`` code, zxcvbn's word lists, the HTTP stack, pyjwt,
  cryptography, hvac, the standard library...);
* the same command with ``requests.Session.send`` wrapped to time every round
  trip (authority or Vault, by port): a benchmark's probe, not product code.

Medians over the runs; figures are milliseconds.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Top-level module -> the group its import time is reported under.
GROUPS = {
    "passgeni_core": "passgeni",
    "vault_plugin_helper": "passgeni",
    "zxcvbn": "zxcvbn (breach list)",
    "requests": "requests + urllib3",
    "urllib3": "requests + urllib3",
    "charset_normalizer": "requests + urllib3",
    "idna": "requests + urllib3",
    "certifi": "requests + urllib3",
    "jwt": "pyjwt",
    "cryptography": "cryptography",
    "_cffi_backend": "cryptography",
    "hvac": "hvac",
    "msgspec": "msgspec",
}

_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|( *)(\S+)")

_PROBE = """
import json, sys, time
import requests
calls = []
send = requests.Session.send
def timed(self, request, **kwargs):
    began = time.perf_counter()
    try:
        return send(self, request, **kwargs)
    finally:
        calls.append([request.method, request.url, (time.perf_counter() - began) * 1000])
requests.Session.send = timed
from passgeni_core.cli import main
code = main(sys.argv[2:])
open(sys.argv[1], "w").write(json.dumps(calls))
sys.exit(code)
"""


STARTUP = "interpreter start-up (as python -c pass)"


def _imports(argv: list[str], env: dict[str, str]) -> list[tuple[str, float]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [(m.group(3), int(m.group(1)) / 1000) for m in _LINE.finditer(done.stderr)]


def import_groups(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Milliseconds of import self time by group for one run of ``passgeni ARGS``.

    The modules bare ``python -c pass`` imports too (site, encodings, the
    editable-install finder...) are one group: they are the reference's cost.
    """
    bare = {name for name, _ in _imports(["-c", "pass"], env)}
    groups: dict[str, float] = {}
    for name, ms in _imports(["-m", "passgeni_core.cli", *argv], env):
        top = name.split(".")[0]
        group = STARTUP if name in bare else GROUPS.get(top, "standard library, other")
        groups[group] = groups.get(group, 0.0) + ms
    return groups


def round_trips(argv: list[str], env: dict[str, str], authority_url: str) -> list[list[object]]:
    """``[who, method, path, ms]`` of every HTTP request of one run."""
    with tempfile.TemporaryDirectory() as d:
        record = Path(d) / "calls.json"
        subprocess.run(
            [sys.executable, "-c", _PROBE, str(record), *argv],
            env=env, capture_output=True, check=True,
        )  # fmt: skip
        calls = json.loads(record.read_text())
    out = []
    for method, url, ms in calls:
        who = "authority" if url.startswith(authority_url) else "vault"
        path = re.sub(r"/bench/[^/?]+", "/…", url.split("//", 1)[1].split("/", 1)[1])
        out.append([who, method, "/" + path.split("?")[0], ms])
    return out


def breakdown(
    runs: int, argv_of: Callable[[int], list[str]], env: dict[str, str], authority_url: str
) -> dict[str, object]:
    """Median import time by group and median time of each round trip over ``runs`` runs."""
    imports: dict[str, list[float]] = {}
    trips: dict[str, list[float]] = {}
    for i in range(runs):
        for group, ms in import_groups(argv_of(2 * i), env).items():
            imports.setdefault(group, []).append(ms)
        for who, method, path, ms in round_trips(argv_of(2 * i + 1), env, authority_url):
            trips.setdefault(f"{who} {method} {path}", []).append(float(str(ms)))
    by_group = {k: round(statistics.median(v), 1) for k, v in imports.items()}
    by_trip = {k: round(statistics.median(v), 1) for k, v in trips.items()}
    return {
        "import_ms_by_group": dict(sorted(by_group.items(), key=lambda kv: -kv[1])),
        "import_ms_total": round(sum(by_group.values()), 1),
        "import_ms_beyond_start_up": round(sum(v for k, v in by_group.items() if k != STARTUP), 1),
        "round_trip_ms": by_trip,
        "round_trip_ms_total": round(sum(by_trip.values()), 1),
    }
