"""The CPU one certificate costs through the authority's whole ASGI app, in process.

No server, no socket, no load generator: requests go straight into the app
(``create_app``, its whole middleware stack) as an ASGI server would hand
them over, ``--concurrency`` at a time on one event loop, so the figure is
the authority's own work per certificate (routing, middleware, metrics,
sessions, admission, signing, the group commit and its WAL sync) and moves
only with the code. Meant for before/after measurements on a shared
machine, where wrk's rates are noisy:

* with ``--postgres`` (a durable throwaway cluster), wall µs per certificate
  at this concurrency: mostly the round trips to the server;
* CPU µs per certificate (``time.process_time``; noisy under load, less
  than wall time);
* SQL statements per certificate (SQLite's trace callback; every statement
  the driver runs, ``BEGIN``/``COMMIT``/savepoints included);
* under ``valgrind --tool=callgrind --instr-atstart=no``, instructions per
  certificate: the measured phase switches instrumentation on and off with
  ``callgrind_control`` (run with ``--callgrind``), so start-up, imports and
  warm-up are not counted. Deterministic to a fraction of a percent.

    python bench/asgi_cost.py [--flow two-step|batch|refused] [--certificates 1600]
                              [--concurrency 16] [--batch-size 100] [--callgrind]

``PROMETHEUS_MULTIPROC_DIR`` is set to a fresh directory (as ``serve
--workers N`` does for its workers) unless ``--no-multiprocess``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from _root import ROOT

PRESET = "soc2"


def _create_key(state_dir: str, database_url: str | None) -> str:
    db = ["--database-url", database_url] if database_url else []
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "passgeni_authority",
            "create-key",
            "--state-dir",
            state_dir,
            *db,
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


class Driver:
    """Calls an ASGI app as a server would: one scope, a body, the answer collected."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {key}".encode()),
        ]

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [*self.headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # a client that stays connected
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def _two_step(driver: Driver, gen_body: bytes, count: int) -> None:
    for _ in range(count):
        status, body = await driver.post("/api/generate", gen_body)
        assert status == 200, (status, body[:200])
        sid = json.loads(body)["generation_session_id"]
        redeem = json.dumps({"generation_session_id": sid}).encode()
        status, body = await driver.post("/api/generate-certificate", redeem)
        assert status == 201, (status, body[:200])


async def _batch(driver: Driver, gen_body: bytes, batches: int, size: int) -> None:
    request = json.loads(gen_body)
    commitments = [request.pop("seed_commitment")] * size  # one per session
    batch_body = json.dumps({**request, "count": size, "seed_commitments": commitments}).encode()
    for _ in range(batches):
        status, body = await driver.post("/api/generate-batch", batch_body)
        assert status == 200, (status, body[:200])
        sessions = json.loads(body)["generation_session_ids"]
        items = json.dumps({"items": [{"generation_session_id": s} for s in sessions]}).encode()
        status, body = await driver.post("/api/generate-certificates", items)
        assert status in (200, 201), (status, body[:200])


def _strace_start() -> tuple[subprocess.Popen[bytes], str]:
    fd, out = tempfile.mkstemp(prefix="asgi-cost-strace-")
    os.close(fd)
    proc = subprocess.Popen(
        ["strace", "-f", "-qq", "-e", "trace=sendto,recvfrom", "-o", out, "-p", str(os.getpid())],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached to every thread
    return proc, out


def _strace_stop(proc: subprocess.Popen[bytes], out: str) -> tuple[int, int]:
    """Sends to the database's socket (every ``sendto`` but the one-byte
    wake-ups of the event loop's self-pipe) and reads of its answers (every
    ``recvfrom`` that read something): a round trip is one wait for a read."""
    proc.send_signal(2)
    proc.wait()
    sends = reads = 0
    with open(out) as lines:
        for line in lines:
            if "sendto(" in line and '"\\0", 1' not in line:
                sends += 1
            elif "recvfrom(" in line and "EAGAIN" not in line and '"\\0"' not in line:
                reads += 1
    return sends, reads


async def _refused(driver: Driver, count: int) -> None:
    # No group commit, no sync: the same instructions run after run (the
    # middleware stack, the key check, the rate-limit fields, a refusal).
    body = json.dumps({"generation_session_id": "not-a-session"}).encode()
    for _ in range(count):
        status, answer = await driver.post("/api/generate-certificate", body)
        assert status == 400, (status, answer[:200])


def _callgrind(on: bool) -> None:
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        check=True,
        capture_output=True,
    )


async def _phase(driver: Driver, args: argparse.Namespace, gen_body: bytes, certs: int) -> None:
    tasks = []
    per = max(1, certs // args.concurrency)
    for _ in range(args.concurrency):
        if args.flow == "two-step":
            tasks.append(_two_step(driver, gen_body, per))
        elif args.flow == "refused":
            tasks.append(_refused(driver, per))
        else:
            tasks.append(_batch(driver, gen_body, max(1, per // args.batch_size), args.batch_size))
    await asyncio.gather(*tasks)


def _lifespan(app: Any) -> tuple[asyncio.Queue[Any], asyncio.Task[None]]:
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    outbox: asyncio.Queue[Any] = asyncio.Queue()
    task = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    inbox.put_nowait({"type": "lifespan.startup"})
    return outbox, task


async def _main(args: argparse.Namespace, database_url: str | None) -> dict[str, Any]:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from passgeni_authority import create_app
    from passgeni_authority.cli import settings_from_environment
    from passgeni_core import seed_commitment
    from passgeni_core.model import new_seed

    statements = [0]
    seen: dict[str, int] = {}

    @event.listens_for(Engine, "connect")
    def _trace(dbapi_conn: Any, _record: Any) -> None:
        if hasattr(dbapi_conn, "set_trace_callback"):

            def count(sql: str) -> None:
                statements[0] += 1
                if args.statements:
                    seen[sql[:90]] = seen.get(sql[:90], 0) + 1

            dbapi_conn.set_trace_callback(count)

    state = tempfile.mkdtemp(prefix="asgi-cost-")
    if not args.no_multiprocess:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="asgi-cost-prom-")
    key = _create_key(state, database_url)
    app = create_app(settings_from_environment(state_dir=state, database_url=database_url))
    outbox, _lifespan_task = _lifespan(app)
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    driver = Driver(app, key)
    gen_body = json.dumps(
        {"compliance_standard": PRESET, "seed_commitment": seed_commitment(new_seed())}
    ).encode()
    await _phase(driver, args, gen_body, args.warmup)
    before_statements = statements[0]
    seen.clear()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    tracer = _strace_start() if args.strace else None
    if args.callgrind:
        _callgrind(True)
    cpu, wall = time.process_time(), time.perf_counter()
    await _phase(driver, args, gen_body, args.certificates)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if args.callgrind:
        _callgrind(False)
    sends = _strace_stop(*tracer) if tracer is not None else None
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    n = args.certificates
    for sql, times in sorted(seen.items(), key=lambda kv: -kv[1]):
        print(f"{times / n:8.3f}  {' '.join(sql.split())}", file=sys.stderr)
    return {
        "flow": args.flow,
        "certificates": n,
        "cpu_us_per_certificate": round(cpu / n * 1e6, 1),
        "wall_us_per_certificate": round(wall / n * 1e6, 1),
        "sqlite_statements_per_certificate": round((statements[0] - before_statements) / n, 3),
        **(
            {}
            if sends is None
            else {
                "socket_sends_per_certificate": round(sends[0] / n, 3),
                "socket_reads_per_certificate": round(sends[1] / n, 3),
            }
        ),
    }


def _in_thread(args: argparse.Namespace, database_url: str | None) -> dict[str, Any]:
    """Run the measurement on a daemon thread's own loop: its app, lifespan and
    group commit stay up after the answer, and nothing waits for them."""
    out: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        out.update(loop.run_until_complete(_main(args, database_url)))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    if not out:
        raise SystemExit("the measurement failed (see above)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow", choices=("two-step", "batch", "refused"), default="two-step")
    parser.add_argument("--certificates", type=int, default=1600)
    parser.add_argument("--warmup", type=int, default=320)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--no-multiprocess", action="store_true")
    parser.add_argument(
        "--strace", action="store_true", help="count socket sends (PostgreSQL round trips)"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="a durable throwaway PostgreSQL cluster"
    )
    parser.add_argument("--statements", action="store_true", help="list statements per certificate")
    parser.add_argument(
        "--profile", metavar="PATH", help="write cProfile stats of the measured phase"
    )
    args = parser.parse_args()
    if args.postgres:
        from _servers import DurablePostgres

        with DurablePostgres() as pg:
            url = pg.create_database("bench")
            result = _in_thread(args, url)
            print(json.dumps({**result, "database": "postgresql"}))
            sys.stdout.flush()
        os._exit(0)  # the cluster is stopped; the service's threads need no goodbye
    print(json.dumps(_in_thread(args, None)))
    sys.stdout.flush()
    os._exit(0)  # the lifespan task and the service stay up: nothing to close cleanly


if __name__ == "__main__":
    main()
