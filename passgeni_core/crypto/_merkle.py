"""RFC 9162 Merkle trees: the hashes, proofs and their verification.

The transparency log of the authority (``docs/transparency-log.md``) is an
append-only list of leaves hashed as RFC 9162 section 2.1 (the same as RFC
6962): a leaf is ``SHA-256(0x00 || data)``, an interior node ``SHA-256(0x01 ||
left || right)``, the tree over ``n > 1`` leaves is split at the largest power
of two smaller than ``n``, and the empty tree's hash is ``SHA-256("")``.

:class:`MerkleTree` holds the leaf hashes of a log and every complete subtree
hash above them (``2n`` hashes for ``n`` leaves), so a root, an inclusion
proof (section 2.1.3) or a consistency proof (section 2.1.4) costs
``O(log n)`` hashes however large the log grows. The verifiers
(:func:`verify_inclusion`, :func:`verify_consistency`) are the algorithms of
sections 2.1.3.2 and 2.1.4.2, and take nothing on trust from the prover.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

#: Bytes in every hash of the tree (SHA-256).
HASH_SIZE = 32
#: The hash of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only Merkle tree of leaf hashes, with its complete subtrees cached.

    ``levels[h][i]`` is the hash of the ``i``-th complete subtree of ``2**h``
    leaves (aligned on a multiple of ``2**h``), kept as 32-byte slices of one
    ``bytearray`` per level.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self.extend(leaf_hashes)

    def __len__(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def _get(self, level: int, index: int) -> bytes:
        start = index * HASH_SIZE
        return bytes(self._levels[level][start : start + HASH_SIZE])

    def append(self, leaf: bytes) -> int:
        """Add one leaf hash; its index."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        index = len(self)
        self._levels[0] += leaf
        level, position, value = 0, index, bytes(leaf)
        # Each completed pair completes a subtree one level up.
        while position & 1:
            value = node_hash(self._get(level, position - 1), value)
            level, position = level + 1, position >> 1
            if len(self._levels) == level:
                self._levels.append(bytearray())
            self._levels[level] += value
        return index

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._get(0, index)

    def _range(self, lo: int, hi: int) -> bytes:
        """MTH of leaves ``lo .. hi-1``."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and lo % n == 0:
            return self._get(n.bit_length() - 1, lo // n)
        k = _split(n)
        return node_hash(self._range(lo, lo + k), self._range(lo + k, hi))

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= len(self):
            raise ValueError(f"tree size {size} is not between 0 and {len(self)}")

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` leaves (all of them by default)."""
        size = len(self) if size is None else size
        self._check_size(size)
        return self._range(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 2.1.3.1)."""
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is not in a tree of size {size}")
        proof: list[bytes] = []
        lo, hi, m = 0, size, index
        # PATH(m, D[lo:hi]) from the top: siblings are collected root-first, reversed at the end.
        while hi - lo > 1:
            k = _split(hi - lo)
            if m < k:
                proof.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range(lo, lo + k))
                lo, m = lo + k, m - k
        proof.reverse()
        return proof

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """The proof that the tree of ``old`` leaves is a prefix of the one of ``new``
        (RFC 9162 2.1.4.1); empty when ``old`` is 0 or ``old == new``."""
        self._check_size(new)
        if not 0 <= old <= new:
            raise ValueError(f"tree size {old} is not between 0 and {new}")
        if old in (0, new):
            return []
        proof: list[bytes] = []
        lo, hi, m, complete = 0, new, old, True
        # SUBPROOF(m, D[lo:hi], complete), unrolled; siblings root-first, reversed at the end.
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        if not complete:
            proof.append(self._range(lo, hi))
        proof.reverse()
        return proof


def _sized(hashes: Sequence[bytes]) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size``
    leaves whose root is ``root`` (RFC 9162 2.1.3.2)."""
    if not (0 <= index < size) or not _sized([leaf, root, *proof]):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree of ``old`` leaves with root ``old_root`` is a
    prefix of the tree of ``new`` leaves with root ``new_root`` (RFC 9162 2.1.4.2)."""
    if not 0 <= old <= new or not _sized([old_root, new_root, *proof]):
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof  # every tree extends the empty one
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a complete subtree: its root is the proof's first node
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root
