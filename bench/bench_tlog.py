"""The transparency log's costs, in process: building the tree a process keeps, and what a
checkpoint or a proof costs once it is built, beside the ES256 signature every certificate
already costs (the reference: what issuance pays anyway).

A process catching up with the log appends every leaf hash it reads (``MerkleTree.append``);
afterwards a root, an inclusion proof or a consistency proof reads ``O(log n)`` cached
subtree hashes, and a checkpoint adds one Ed25519 signature.

    python bench/bench_tlog.py [--leaves 1000000] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import tracemalloc
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from passgeni_core.crypto import MerkleTree, NoteSigner, checkpoint_text, leaf_hash


def _per_call(fn: Callable[[int], object], count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        fn(i)
    return (time.perf_counter() - start) / count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--leaves", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n = args.leaves
    hashes_ = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    start = time.perf_counter()
    tree = MerkleTree()
    for h in hashes_:
        tree.append(h)
    build = time.perf_counter() - start
    # Memory on a tenth of the leaves (tracemalloc slows the build it measures), scaled.
    tracemalloc.start()
    small = MerkleTree(hashes_[: n // 10])
    memory = tracemalloc.get_traced_memory()[0] * 10
    tracemalloc.stop()
    del small
    signer = NoteSigner.generate("bench.example/log")
    es256 = ec.generate_private_key(ec.SECP256R1())
    token = b"x" * 900  # about a certificate's size
    results = {
        "leaves": n,
        "build_s": round(build, 2),
        "append_us": round(build / n * 1e6, 2),
        "tree_memory_mib": round(memory / 2**20, 1),
        "leaf_hash_us": round(_per_call(lambda i: leaf_hash(token), 20000) * 1e6, 2),
        "root_us": round(_per_call(lambda i: tree.root(n - (i % 1000)), 2000) * 1e6, 1),
        "inclusion_proof_us": round(
            _per_call(lambda i: tree.inclusion_proof((i * 7919) % n, n), 2000) * 1e6, 1
        ),
        "consistency_proof_us": round(
            _per_call(lambda i: tree.consistency_proof(n // 2 + i, n), 2000) * 1e6, 1
        ),
        "checkpoint_sign_us": round(
            _per_call(
                lambda i: signer.sign(checkpoint_text("bench.example/log", n, tree.root())), 500
            )
            * 1e6,
            1,
        ),
        "es256_sign_us_reference": round(
            _per_call(lambda i: es256.sign(token, ec.ECDSA(hashes.SHA256())), 2000) * 1e6, 1
        ),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
