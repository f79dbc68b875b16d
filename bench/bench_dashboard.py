"""The dashboard over 10,000 certificates: server time of each view, beside the audit API.

An authority (the real app under uvicorn, SQLite in a temporary state directory) holds
10,000 certificates of one team, issued over the last 400 days (so every bucket is
filled: valid, expiring within 30/60/90 days, expired; 1 % revoked), spread over three
stores and 10,000 targets, and a submitted scan of 10,000 credentials. A signed-in client
then requests each view in turn. Reported: the very first dashboard request (it copies the
10,000 certificates' targets and labels from their tokens into ``dashboard_targets``, once),
then per view its first request, the median and p90 of ``--rounds`` further requests, and
the answer's size. The reference beside them is ``GET /api/audit`` (one
page of 50 records, the JSON API's own paginated listing).

Times are wall time of a sequential local HTTP client (one request at a time, so the
server's handler time plus a loopback round trip of well under a millisecond).

    python bench/bench_dashboard.py [--certificates 10000] [--rounds 20] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _root import ROOT

from passgeni_authority import AuthoritySettings, RateLimits
from passgeni_authority.embedded import EmbeddedAuthority
from passgeni_core import AuthorityClient
from passgeni_core.client import ScanFindingBody, ScanSubmissionBody
from tests.support.authority import plain_session
from tests.support.seeds import commitments

BATCH = 100  # items per request: the authority's bodies are limited to 64 KiB
SYSTEMS = ("vault", "aws-sm", "k8s")


class Clock:
    """The authority's clock, moved back while older certificates are issued."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def seed(url: str, key: str, clock: Clock, count: int) -> list[str]:
    http = plain_session()
    http.headers["Authorization"] = f"Bearer {key}"
    ids: list[str] = []
    for start in range(0, count, BATCH):
        n = min(BATCH, count - start)
        # Spread over 400 days: every bucket gets its share.
        clock.offset = -timedelta(days=400 * (count - start) / count)
        opened = http.post(
            f"{url}/api/generate-batch",
            json={
                "compliance_standard": ("soc2", "pci-dss", "hipaa")[start // BATCH % 3],
                "count": n,
                "seed_commitments": commitments(n),
            },
            timeout=60,
        )
        opened.raise_for_status()
        items = [
            {
                "generation_session_id": sid,
                "target": {
                    "system": SYSTEMS[(start + i) % 3],
                    "path": f"app/{start + i:05d}#password",
                },
                "label": f"service {start + i}",
            }
            for i, sid in enumerate(opened.json()["generation_session_ids"])
        ]
        issued = http.post(f"{url}/api/generate-certificates", json={"items": items}, timeout=60)
        issued.raise_for_status()
        ids += [c["cert_id"] for c in issued.json()["certificates"]]
    clock.offset = timedelta(0)
    for cert_id in ids[::100]:
        http.post(f"{url}/api/certificates/{cert_id}/revoke", json={"reason": "bench"}, timeout=30)
    return ids


def submit_scan(client: AuthorityClient, ids: list[str]) -> None:
    findings = [
        ScanFindingBody(
            uri=f"{SYSTEMS[i % 3]}://app/{i:05d}#password",
            status="drifted" if i % 50 == 0 else "valid",
            reasons=["value_changed"] if i % 50 == 0 else [],
            cert_id=cert_id,
        )
        for i, cert_id in enumerate(ids)
    ]
    for start in range(0, len(findings), 300):
        client.submit_scan(ScanSubmissionBody(credentials=findings[start : start + 300]))


def sign_in(url: str, key: str) -> Any:
    http = plain_session()
    form = http.get(f"{url}/dashboard/sign-in", timeout=10)
    token = re.findall(r'name="csrf" value="([^"]+)"', form.text)[0]
    answer = http.post(
        f"{url}/dashboard/sign-in",
        data={"csrf": token, "api_key": key},
        timeout=30,
        allow_redirects=False,
    )
    if answer.status_code != 303:
        raise SystemExit(f"sign-in: HTTP {answer.status_code}")
    return http


def timed(http: Any, url: str, **kwargs: Any) -> tuple[float, int]:
    started = time.perf_counter()
    answer = http.get(url, timeout=120, allow_redirects=False, **kwargs)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise SystemExit(f"{url}: HTTP {answer.status_code}")
    return elapsed * 1000, len(answer.content)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--certificates", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--json-out", type=Path, default=ROOT / "bench" / "results" / "dashboard.json")
    args = ap.parse_args()
    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="passgeni-bench-dashboard-") as tmp:
        settings = AuthoritySettings(
            state_dir=Path(tmp), clock=clock, rate_limits=RateLimits.unlimited()
        )
        with EmbeddedAuthority(settings=settings, issuer_is_base_url=True) as authority:
            url = authority.base_url
            key = authority.service.create_api_key("bench", team="bench-team", rate_limit=10**6).key
            started = time.perf_counter()
            ids = seed(url, key, clock, args.certificates)
            with AuthorityClient(url, key, issuer=url) as client:
                submit_scan(client, ids)
            print(
                f"seeded {len(ids)} certificates and a scan in {time.perf_counter() - started:.1f} s"
            )
            http = sign_in(url, key)
            api = plain_session()
            api.headers["Authorization"] = f"Bearer {key}"
            views = {
                "overview": "/dashboard",
                "certificates (page 1)": "/dashboard/certificates",
                "certificates (last page)": f"/dashboard/certificates?page={-(-len(ids) // 50)}",
                "certificates (status=expired)": "/dashboard/certificates?status=expired",
                "certificates (search)": "/dashboard/certificates?q=service%209999",
                "stores and targets": "/dashboard/stores",
                "coverage": "/dashboard/coverage",
                "anomalies": "/dashboard/anomalies",
                "certificates.csv (all)": "/dashboard/certificates.csv",
                "reference: GET /api/audit (50)": "/api/audit?page_size=50",
            }
            once, _size = timed(http, url + "/dashboard")
            print(f"first dashboard request (copies {len(ids)} targets): {once:.0f} ms")
            rows = [
                {
                    "view": "first request ever (copies the targets)",
                    "path": "/dashboard",
                    "first_ms": round(once, 1),
                    "median_ms": None,
                    "p90_ms": None,
                    "bytes": _size,
                }
            ]
            for name, path in views.items():
                client_of = api if path.startswith("/api/") else http
                first, size = timed(client_of, url + path)
                warm = sorted(timed(client_of, url + path)[0] for _ in range(args.rounds))
                rows.append(
                    {
                        "view": name,
                        "path": path,
                        "first_ms": round(first, 1),
                        "median_ms": round(statistics.median(warm), 1),
                        "p90_ms": round(warm[int(0.9 * (len(warm) - 1))], 1),
                        "bytes": size,
                    }
                )
    print(f"\n{'view':34} {'first':>8} {'median':>8} {'p90':>8} {'bytes':>9}")
    for r in rows[1:]:
        print(
            f"{r['view']:34} {r['first_ms']:7.1f}ms {r['median_ms']:7.1f}ms {r['p90_ms']:7.1f}ms {r['bytes']:9d}"
        )
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(
        json.dumps(
            {
                "certificates": args.certificates,
                "rounds": args.rounds,
                "machine": {
                    "python": platform.python_version(),
                    "cpus": __import__("os").cpu_count(),
                },
                "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "views": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
