"""``passgeni scan`` over N certified credentials in OpenBao vs plain hvac listing and reading.

* Setup (not measured): N real certified credentials, ``FOLDERS`` folders of
  N/FOLDERS secrets under ``vault://secret/scanbench``, made by ``rotate_all``
  (what ``passgeni rotate --inventory`` runs: batched generation sessions and
  batch issuance, then one KV v2 write and one metadata merge each). A first
  scan must judge every one of them ``valid``, or the benchmark stops.
* PassGeni: ``passgeni scan vault://secret/scanbench --format json`` in its own
  process (its start-up counted): the walk of the KV v2 metadata folders (one
  ``LIST`` each), each secret's metadata and current data read, the
  certificates' records fetched from the authority in bulk (one lookup per 500),
  the JWKS once, and each credential judged (signature as of issuance, ``jti``,
  the record, revocation, expiry, target and version, the generation proof).
* Reference: a Python process with plain hvac doing what any inventory script
  does: ``list_secrets`` recursively from the same prefix, then for each secret
  ``read_secret_metadata`` and ``read_secret_version``, sequentially (the scan
  reads sequentially too), one hvac client. It judges nothing.

Both run against the same OpenBao dev server, alternately, in interleaved
rounds; the ratio reported is the median of the rounds' ratios (wall clock,
process start to exit). The authority runs warm in its own process (SQLite,
no rate limits: the per-IP view limit is discussed in docs/performance.md).

    python bench/bench_scan.py [--count 10000] [--rounds 5] [--readers 8] [--baseline DIR]
        [--json-out PATH (default bench/results/scan.json)]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _root  # noqa: F401 - the repository root on sys.path, for tests.support

from passgeni_core import AuthorityClient, GenerationParameters, parse_store_uri
from passgeni_core.cli import rotate_all
from passgeni_core.workflows import InventoryEntry
from tests.support import OpenBaoServer
from tests.support.authority import authority_process

PREFIX = "scanbench"
FOLDERS = 100

REFERENCE = r"""
import sys, threading, hvac
from concurrent.futures import ThreadPoolExecutor
addr, token, prefix, readers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
kv = hvac.Client(url=addr, token=token).secrets.kv.v2
secrets = []
def walk(path):
    for name in kv.list_secrets(path=path, mount_point="secret")["data"]["keys"]:
        child = f"{path}/{name}".rstrip("/")
        if name.endswith("/"):
            walk(child)
        else:
            secrets.append(child)
walk(prefix)
local = threading.local()
def read(path):
    if readers == 1:
        mine = kv
    else:
        mine = getattr(local, "kv", None)
        if mine is None:
            mine = local.kv = hvac.Client(url=addr, token=token).secrets.kv.v2
    meta = mine.read_secret_metadata(path=path, mount_point="secret")["data"]
    data = mine.read_secret_version(
        path=path, mount_point="secret", version=meta["current_version"],
        raise_on_deleted_version=True,
    )["data"]["data"]
    return bool(data) and bool(meta["custom_metadata"])
if readers == 1:
    print(sum(map(read, secrets)))
else:
    with ThreadPoolExecutor(readers) as pool:
        print(sum(pool.map(read, secrets)))
"""
#: Runs the CLI of another checkout (``--baseline DIR``): its modules first on sys.path.
BASELINE = "import sys; sys.path.insert(0, sys.argv.pop(1)); from passgeni_core.cli import main; "
BASELINE += "sys.exit(main(sys.argv[1:]))"


def make_credentials(auth: Any, count: int) -> float:
    params = GenerationParameters.for_preset("soc2")
    per = max(1, count // FOLDERS)
    entries = [
        InventoryEntry(
            name=f"c{i}",
            destination=parse_store_uri(f"vault://secret/{PREFIX}/f{i // per:03d}/c{i:05d}"),
            preset="soc2",
            keeper="bench",
            parameters=params,
        )
        for i in range(count)
    ]
    began = time.perf_counter()
    with AuthorityClient(auth.url, auth.api_key, issuer=auth.issuer) as client:
        outcomes = rotate_all(client, entries, concurrency=8)
    failed = [o for o in outcomes if o.failed]
    if failed:
        raise SystemExit(f"{len(failed)} rotations failed, e.g. {failed[0].error}")
    return time.perf_counter() - began


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall-clock seconds, the child's CPU seconds (user + system), its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0,):
        raise SystemExit(f"{argv[:3]} exited {done.returncode}: {done.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, done.stdout


def passgeni_scan(env: dict[str, str], count: int, tree: Path | None = None) -> tuple[float, float]:
    passgeni = [str(Path(sys.executable).with_name("passgeni"))]
    if tree is not None:
        passgeni = [sys.executable, "-c", BASELINE, str(tree)]
    wall, cpu, out = _timed([*passgeni, "scan", f"vault://secret/{PREFIX}", "--json"], env)
    counts = json.loads(out)["counts"]
    if counts.get("valid") != count:
        raise SystemExit(f"the scan judged {counts}, not {count} valid")
    return wall, cpu


def reference(
    bao: OpenBaoServer, env: dict[str, str], count: int, readers: int = 1
) -> tuple[float, float]:
    argv = [sys.executable, "-c", REFERENCE, bao.url, bao.token, PREFIX, str(readers)]
    wall, cpu, out = _timed(argv, env)
    if int(out.strip()) != count:
        raise SystemExit(f"the reference read {out.strip()} secrets, not {count}")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--json-out", type=Path, default=Path(__file__).resolve().parent / "results" / "scan.json"
    )
    parser.add_argument(
        "--readers",
        type=int,
        default=8,
        help="also time the reference with this many reader threads (the scan's own number; "
        "0: only the sequential reference)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="also time the scan of another checkout (e.g. `git archive main` unpacked)",
    )
    args = parser.parse_args()
    rounds: list[dict[str, float]] = []
    with OpenBaoServer() as bao, authority_process() as auth:
        env = {
            **os.environ,
            "VAULT_ADDR": bao.url,
            "VAULT_TOKEN": bao.token,
            "PASSGENI_URL": auth.url,
            "PASSGENI_ISSUER": auth.issuer,
            "PASSGENI_CONFIG": os.devnull,
        }
        env.pop("PASSGENI_API_KEY", None)  # the scan needs no key: its calls are public
        os.environ.update(VAULT_ADDR=bao.url, VAULT_TOKEN=bao.token)
        made = make_credentials(auth, args.count)
        print(f"{args.count} certified credentials made in {made:.1f} s", file=sys.stderr)
        passgeni_scan(env, args.count)  # warm, and every credential judged valid
        reference(bao, env, args.count)
        runs = {
            "ref": lambda: reference(bao, env, args.count),
            "ours": lambda: passgeni_scan(env, args.count),
        }
        if args.readers > 1:
            runs["ref_threads"] = lambda: reference(bao, env, args.count, args.readers)
        if args.baseline is not None:
            runs["baseline"] = lambda: passgeni_scan(env, args.count, args.baseline)
            runs["baseline"]()  # warm, and the baseline judges every one valid too
        for n in range(max(1, args.rounds)):
            order = list(runs) if n % 2 == 0 else list(reversed(runs))
            got: dict[str, float] = {"load": float(json.loads(_loadavg())[0])}
            for which in order:
                wall, cpu = runs[which]()
                got[f"{which}_seconds"], got[f"{which}_cpu_seconds"] = wall, cpu
            got["ratio"] = got["ours_seconds"] / got["ref_seconds"]
            if "ref_threads_seconds" in got:
                got["ratio_threads"] = got["ours_seconds"] / got["ref_threads_seconds"]
            if "baseline_seconds" in got:
                got["ratio_baseline"] = got["baseline_seconds"] / got["ref_seconds"]
            rounds.append(got)
            print(
                f"round {n + 1}: " + json.dumps({k: round(v, 2) for k, v in got.items()}),
                file=sys.stderr,
            )
    report: dict[str, Any] = {
        "count": args.count,
        "folders": FOLDERS,
        "readers": args.readers,
        "rounds": len(rounds),
        "target_ratio": 2.0,
        "made_seconds": round(made, 1),
    }
    for name in rounds[0]:
        report[f"median_{name}"] = round(statistics.median(r[name] for r in rounds), 3)
    report.update(
        {
            "uptime": _uptime(),
            "rounds_detail": [{k: round(v, 3) for k, v in r.items()} for r in rounds],
        }
    )
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n")


def _loadavg() -> str:
    return json.dumps(Path("/proc/loadavg").read_text().split()[:3])


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


if __name__ == "__main__":
    main()
