"""`make bench`: every benchmark in this folder, one after the other.

Each script measures PassGeni and its reference side by side in one run and
prints its own table; results that a script saves go to bench/results/.
Run one alone with `python bench/<name>.py --help`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_generator.py",
    "bench_tlog.py",
    "bench_terraform.py",
    "bench_terraform_provider.py",
    "bench_ansible.py",
    "bench_authority.py",
    "bench_rotate.py",
    "bench_cli.py",
    "load_authority.py",
    "bench_dashboard.py",
    "bench_scan.py",
]


def main() -> int:
    failed = []
    for name in SCRIPTS:
        path = HERE / name
        if not path.exists():
            continue
        print(f"\n=== {name}", flush=True)
        if subprocess.run([sys.executable, str(path)], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
