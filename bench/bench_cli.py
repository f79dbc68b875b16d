"""What users feel (issue #19 item 6, in part): the wall time of short CLI commands
against ``python -c pass``, side by side, interleaved in rounds.

Measured: ``passgeni presets``, ``passgeni generate --preset soc2`` and an offline
``passgeni verify @CERT --jwks FILE`` (the certificate and JWKS written once by an
embedded authority before the rounds). Each round runs every command once, in turn;
the median round of each is reported with its excess over ``python -c pass`` (the
issue's goal: each within +0.15 s).

    python bench/bench_cli.py [--rounds 9] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_EXCESS_S = 0.15


def _cli() -> list[str]:
    return [sys.executable, "-m", "passgeni_core.cli"]


def _certificate(workdir: Path) -> tuple[Path, Path]:
    from passgeni_authority.embedded import EmbeddedAuthority
    from passgeni_core import AuthorityClient, provision

    with EmbeddedAuthority(state_dir=workdir / "authority", issuer_is_base_url=True) as authority:
        client = AuthorityClient(authority.base_url, authority.api_key, issuer=authority.issuer)
        result = provision(client, "soc2")
        import requests

        http = requests.Session()
        http.trust_env = False
        jwks = http.get(f"{authority.base_url}/.well-known/jwks.json", timeout=10).json()
        issuer = authority.issuer
    cert = workdir / "cert.jwt"
    cert.write_text(result.token)
    keys = workdir / "jwks.json"
    keys.write_text(json.dumps(jwks))
    os.environ["PASSGENI_ISSUER"] = issuer
    return cert, keys


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="passgeni-bench-cli-") as tmp:
        cert, keys = _certificate(Path(tmp))
        env = {k: v for k, v in os.environ.items() if k != "PASSGENI_URL"}
        env["HOME"] = tmp  # no user configuration
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "passgeni presets": [*_cli(), "presets"],
            "passgeni generate --preset soc2": [*_cli(), "generate", "--preset", "soc2"],
            "passgeni verify @cert --jwks F": [*_cli(), "verify", f"@{cert}", "--jwks", str(keys)],
        }
        for argv in commands.values():  # warm the page cache and .pyc files
            _time(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(_time(argv, env))
    base = statistics.median(times["python -c pass"])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        excess = median - base
        rows.append(
            {
                "command": name,
                "median_s": round(median, 3),
                "min_s": round(min(values), 3),
                "excess_s": round(excess, 3),
                "goal_met": name == "python -c pass" or excess <= GOAL_EXCESS_S,
            }
        )
    if args.json:
        print(json.dumps({"rounds": args.rounds, "results": rows}, indent=2))
        return
    print(f"{'command':<36} {'median':>8} {'min':>8} {'excess':>8}  goal (+{GOAL_EXCESS_S} s)")
    for row in rows:
        goal = (
            "-" if row["command"] == "python -c pass" else ("met" if row["goal_met"] else "NOT met")
        )
        print(
            f"{row['command']:<36} {row['median_s']:>7.3f}s {row['min_s']:>7.3f}s "
            f"{row['excess_s']:>+7.3f}s  {goal}"
        )


if __name__ == "__main__":
    main()
