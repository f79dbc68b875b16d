"""Load, durability and crash run against real authority processes.

    python bench/load_authority.py [--backend sqlite|postgres|both] [--duration 60]
                                   [--connections 16] [--threads 2] [--json out.json]

The run itself (``wrk`` driving the full flow, ``kill -9`` mid-load, every
answer checked afterwards) is :mod:`tests.support.load`, shared with
``tests/reliability/test_load_crash.py``, which runs it with a short bound.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import _root  # noqa: F401 - the repository root on sys.path, for tests.support

from tests.support.load import PhaseResult, run_backend


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", type=Path, help="write the reports here")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results: list[PhaseResult] = []
    for backend in backends:
        results += run_backend(
            backend, duration=args.duration, threads=args.threads, connections=args.connections
        )
    failed = False
    for result in results:
        for problem in result.problems:
            failed = True
            print(f"PROBLEM [{result.name}]: {problem}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps([r.report for r in results], indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
