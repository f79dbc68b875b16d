"""Generator throughput: PassGeni vs the naive `secrets.choice` loop, side by side.

Both produce compliant 20-character, four-class passwords (the fips-140-3 /
SOC 2 shape) uniformly: the naive loop draws one `secrets.choice` per
character and rejects non-compliant strings, exactly like our generator but
without bulk bytes and C-level translation. Each contender runs in
alternating rounds in the same process so machine noise hits both alike; the
best round of each is reported with the ratio.

    python bench/bench_generator.py [--count 50000] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import secrets
import string
import time

from passgeni_core import GenerationParameters, generate_many

POOL = string.ascii_uppercase + string.ascii_lowercase + string.digits + string.punctuation


def naive(count: int, length: int = 20) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        pw = "".join(secrets.choice(POOL) for _ in range(length))
        if (
            any(c.isupper() for c in pw)
            and any(c.islower() for c in pw)
            and any(c.isdigit() for c in pw)
            and any(c in string.punctuation for c in pw)
        ):
            out.append(pw)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    params = GenerationParameters.for_preset("fips-140-3", length=20)
    params_no_breach = GenerationParameters(
        length=20, min_upper=1, min_lower=1, min_digits=1, min_special=1, breach_check=False
    )
    generate_many(params, 10)  # warm: compile tables, load the breach list
    best = {
        "passgeni": float("inf"),
        "passgeni_no_breach_check": float("inf"),
        "naive": float("inf"),
    }
    for _ in range(args.rounds):
        for name, fn in (
            ("passgeni", lambda: generate_many(params, args.count)),
            ("passgeni_no_breach_check", lambda: generate_many(params_no_breach, args.count)),
            ("naive", lambda: naive(args.count)),
        ):
            t0 = time.perf_counter()
            out = fn()
            elapsed = time.perf_counter() - t0
            assert len(out) == args.count
            best[name] = min(best[name], elapsed)
    rates = {k: args.count / v for k, v in best.items()}
    result = {
        "benchmark": "compliant 20-char 4-class passwords per second",
        "count": args.count,
        "rounds": args.rounds,
        "passgeni_per_s": round(rates["passgeni"]),
        "passgeni_no_breach_check_per_s": round(rates["passgeni_no_breach_check"]),
        "naive_secrets_choice_per_s": round(rates["naive"]),
        "ratio": round(rates["passgeni"] / rates["naive"], 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:32} {v}")


if __name__ == "__main__":
    main()
