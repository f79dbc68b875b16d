"""Bulk rotation into OpenBao vs plain hvac writes, side by side in one run.

* PassGeni: ``rotate_all`` (what ``passgeni rotate --inventory`` runs) on N
  new credentials, batched (``rotate_many``): per chunk of up to 100, the
  store is read (one ``LIST`` for a folder), passwords are generated locally
  and certified with one ``/api/generate-batch`` + one
  ``/api/generate-certificates``; then, for each credential, its certificate
  is verified offline, the KV v2 version written with check-and-set and the
  certificate metadata merged (``PATCH``).
* Reference: N plain KV v2 writes of a ``secrets.token_urlsafe`` value plus a
  ``custom_metadata`` write each, with hvac.

Both use the same concurrency (threads; one hvac client per thread), the same
OpenBao dev server, and distinct paths. The authority runs warm in its own
process (SQLite, no rate limits). Target: PassGeni at most 1.3x the plain
writes' time.

    python bench/bench_rotate.py [--count 1000] [--concurrency 8] [--rounds 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import _root  # noqa: F401 - the repository root on sys.path, for tests.support

from passgeni_core import AuthorityClient, GenerationParameters, parse_store_uri
from passgeni_core.cli import rotate_all
from passgeni_core.workflows import InventoryEntry
from tests.support import OpenBaoServer
from tests.support.authority import authority_process


def plain_writes(bao: OpenBaoServer, prefix: str, count: int, concurrency: int) -> float:
    local = threading.local()

    def one(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = bao.hvac_client()
        path = f"{prefix}/c{i}"
        client.secrets.kv.v2.create_or_update_secret(
            path=path, mount_point="secret", secret={"password": secrets.token_urlsafe(18)}, cas=0
        )
        client.secrets.kv.v2.update_metadata(
            path=path,
            mount_point="secret",
            custom_metadata={"owner": "bench", "rotated-at": str(time.time())},
        )

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - began


def passgeni_rotation(
    auth_url: str, api_key: str, issuer: str, prefix: str, count: int, concurrency: int
) -> float:
    params = GenerationParameters.for_preset("soc2")
    entries = [
        InventoryEntry(
            name=f"c{i}",
            destination=parse_store_uri(f"vault://secret/{prefix}/c{i}"),
            preset="soc2",
            keeper="bench",
            parameters=params,
        )
        for i in range(count)
    ]
    with AuthorityClient(auth_url, api_key, issuer=issuer) as client:
        client.jwks()  # warm
        began = time.perf_counter()
        outcomes = rotate_all(client, entries, concurrency=concurrency)
        elapsed = time.perf_counter() - began
    failed = [o for o in outcomes if o.failed]
    if failed:
        raise SystemExit(f"{len(failed)} rotations failed, e.g. {failed[0].error}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate plain and PassGeni this many times (fresh paths each round) and report "
        "medians: on a shared machine the load moves between two back-to-back measurements",
    )
    args = parser.parse_args()
    import os

    plains: list[float] = []
    ours_all: list[float] = []
    with OpenBaoServer() as bao, authority_process() as auth:
        os.environ.update(VAULT_ADDR=bao.url, VAULT_TOKEN=bao.token)
        # Warm both paths (connections, imports, SQLite) on a few credentials first.
        plain_writes(bao, "warm-plain", 20, args.concurrency)
        passgeni_rotation(auth.url, auth.api_key, auth.issuer, "warm-pg", 20, args.concurrency)
        for _ in range(max(1, args.rounds)):
            run = secrets.token_hex(3)
            plains.append(plain_writes(bao, f"plain-{run}", args.count, args.concurrency))
            ours_all.append(
                passgeni_rotation(
                    auth.url, auth.api_key, auth.issuer, f"pg-{run}", args.count, args.concurrency
                )
            )
    plain, ours = statistics.median(plains), statistics.median(ours_all)
    ratios = [o / p for p, o in zip(plains, ours_all, strict=True)]
    ratio = statistics.median(ratios)
    report = {
        "count": args.count,
        "concurrency": args.concurrency,
        "rounds": len(plains),
        "plain_hvac_seconds": round(plain, 3),
        "passgeni_rotate_seconds": round(ours, 3),
        "ratio": round(ratio, 2),
        "plain_per_second": round(args.count / plain, 1),
        "passgeni_per_second": round(args.count / ours, 1),
        "target_ratio": 1.3,
        "rounds_plain_seconds": [round(x, 3) for x in plains],
        "rounds_passgeni_seconds": [round(x, 3) for x in ours_all],
        "rounds_ratio": [round(x, 2) for x in ratios],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    rounds = f", median of {len(plains)} rounds" if len(plains) > 1 else ""
    print(f"{args.count} credentials into OpenBao, concurrency {args.concurrency}{rounds}")
    print(f"  plain hvac KV write + metadata: {plain:7.2f} s ({args.count / plain:7.1f}/s)")
    print(f"  passgeni rotate (certified):    {ours:7.2f} s ({args.count / ours:7.1f}/s)")
    print(f"  ratio {ratio:.2f}x (target <= 1.3x)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
