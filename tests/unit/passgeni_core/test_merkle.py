"""The log's Merkle hashing and proofs against published vectors and an independent implementation.

Vectors: the RFC 6962 / RFC 9162 test data of the Certificate Transparency
implementations (transparency-dev/merkle ``testonly/constants.go`` and
``proof/verify_test.go``, formerly certificate-transparency-go): eight leaf
inputs, the root of every prefix and known-good proofs. The independent
implementation is the RFC's recursive definitions written literally (lists,
slicing, recursion), compared with the product's iterative, cached one on
random trees.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from passgeni_core.crypto import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def h(hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes.split()]


# (leaf index, tree size, proof): verify_test.go's vectors (it numbers leaves from 1).
INCLUSION = [
    (
        0,
        8,
        h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
        ),
    ),
    (
        5,
        8,
        h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b "
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
    ),
    (2, 3, h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
        ),
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
        ),
    ),
    (
        6,
        8,
        h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a "
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
    ),
    (
        2,
        5,
        h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
        ),
    ),
    (
        6,
        7,
        h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a "
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
    ),
]


def reference_tree() -> MerkleTree:
    return MerkleTree(leaf_hash(d) for d in LEAF_INPUTS)


def test_roots_of_every_prefix_are_the_published_ones() -> None:
    tree = reference_tree()
    assert EMPTY_ROOT == ROOTS[0] == hashlib.sha256(b"").digest()
    for size, root in enumerate(ROOTS):
        assert tree.root(size) == root, size
        assert MerkleTree(leaf_hash(d) for d in LEAF_INPUTS[:size]).root() == root


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_are_the_published_ones(index: int, size: int, proof: list[bytes]) -> None:
    tree = reference_tree()
    assert tree.inclusion_proof(index, size) == proof
    leaf = leaf_hash(LEAF_INPUTS[index])
    assert verify_inclusion(leaf, index, size, proof, ROOTS[size])
    # The corruptions of verify_test.go: each is refused.
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    wrong = [
        (index - 1, size, leaf, proof, ROOTS[size]),
        (index + 1, size, leaf, proof, ROOTS[size]),
        (index ^ 2, size, leaf, proof, ROOTS[size]),
        (index, size * 2, leaf, proof, ROOTS[size]),
        (index, size // 2, leaf, proof, ROOTS[size]),
        (index, size, leaf_hash(b"WrongLeaf"), proof, ROOTS[size]),
        (index, size, leaf, proof, EMPTY_ROOT),
        (index, size, leaf, proof, some),
        (index, size, leaf, [*proof, ROOTS[size]], ROOTS[size]),
        (index, size, leaf, [ROOTS[size], *proof], ROOTS[size]),
        (index, size, leaf, proof[:-1], ROOTS[size]),
        (index, size, leaf, [proof[0], some, *proof[1:]], ROOTS[size]),
        (index, size, leaf, [*proof, b""], ROOTS[size]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        wrong.append((index, size, leaf, flipped, ROOTS[size]))
    for probe in wrong:
        assert not verify_inclusion(probe[2], probe[0], probe[1], probe[3], probe[4]), probe[:2]


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_are_the_published_ones(old: int, new: int, proof: list[bytes]) -> None:
    tree = reference_tree()
    assert tree.consistency_proof(old, new) == proof
    assert verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)
    if not proof:
        return
    wrong = [
        (old - 1, new, ROOTS[old], ROOTS[new], proof),
        (old + 1, new, ROOTS[old], ROOTS[new], proof),
        (old ^ 2, new, ROOTS[old], ROOTS[new], proof),
        (old, new * 2, ROOTS[old], ROOTS[new], proof),
        (old, new // 2, ROOTS[old], ROOTS[new], proof),
        (old, new, ROOTS[new], ROOTS[old], proof),
        (old, new, ROOTS[old], ROOTS[new], []),
        (old, new, ROOTS[old], ROOTS[new], [*proof, ROOTS[old]]),
        (old, new, ROOTS[old], ROOTS[new], [ROOTS[new], *proof]),
        (old, new, ROOTS[old], ROOTS[new], [proof[0], *proof]),
        (old, new, ROOTS[old], ROOTS[new], proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        wrong.append((old, new, ROOTS[old], ROOTS[new], flipped))
    for probe in wrong:
        assert not verify_consistency(*probe), probe[:2]


def test_trivial_consistency_and_bad_sizes() -> None:
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [EMPTY_ROOT])
    assert not verify_consistency(1, 1, ROOTS[1], ROOTS[2], [])
    assert not verify_consistency(2, 1, ROOTS[2], ROOTS[1], [])
    assert not verify_consistency(1, 2, ROOTS[1], ROOTS[2], [])
    assert not verify_inclusion(ROOTS[1], 0, 0, [], EMPTY_ROOT)
    assert verify_inclusion(ROOTS[1], 0, 1, [], ROOTS[1])
    assert not verify_inclusion(ROOTS[1], 1, 1, [], ROOTS[1])
    tree = reference_tree()
    with pytest.raises(ValueError):
        tree.inclusion_proof(8, 8)
    with pytest.raises(ValueError):
        tree.consistency_proof(3, 9)
    with pytest.raises(ValueError):
        tree.root(9)


# -- an independent implementation: RFC 9162 2.1 written literally -----------------------


def ref_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = ref_split(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = ref_split(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_split(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=12), min_size=1, max_size=64))
def test_matches_the_independent_implementation_for_every_proof(data: list[bytes]) -> None:
    tree = MerkleTree(leaf_hash(x) for x in data)
    n = len(data)
    for size in range(n + 1):
        assert tree.root(size) == ref_mth(data[:size])
    roots = [ref_mth(data[:size]) for size in range(n + 1)]
    for size in range(1, n + 1):
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == ref_path(index, data[:size])
            assert verify_inclusion(leaf_hash(data[index]), index, size, proof, roots[size])
        for old in range(1, size):
            proof = tree.consistency_proof(old, size)
            assert proof == ref_subproof(old, data[:size], True)
            assert verify_consistency(old, size, roots[old], roots[size], proof)
            # Another old tree (one leaf changed) is never proven consistent.
            forged = ref_mth([b"forged", *data[1:old]])
            assert not verify_consistency(old, size, forged, roots[size], proof)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.binary(max_size=4), min_size=2, max_size=40),
    st.data(),
)
def test_a_proof_for_one_leaf_proves_no_other(data: list[bytes], draw: st.DataObject) -> None:
    tree = MerkleTree(leaf_hash(x) for x in data)
    n = len(data)
    index = draw.draw(st.integers(0, n - 1))
    other = draw.draw(st.integers(0, n - 1).filter(lambda i: data[i] != data[index]))
    proof = tree.inclusion_proof(index, n)
    assert not verify_inclusion(leaf_hash(data[other]), index, n, proof, tree.root())


def test_every_proof_of_every_tree_up_to_64_leaves_matches_the_reference() -> None:
    data = [hashlib.sha256(bytes([i])).digest()[: i % 7] for i in range(64)]
    tree = MerkleTree(leaf_hash(x) for x in data)
    roots = [ref_mth(data[:size]) for size in range(65)]
    for size in range(1, 65):
        assert tree.root(size) == roots[size]
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == ref_path(index, data[:size]), (index, size)
            assert verify_inclusion(leaf_hash(data[index]), index, size, proof, roots[size])
        for old in range(size + 1):
            proof = tree.consistency_proof(old, size)
            expected = [] if old in (0, size) else ref_subproof(old, data[:size], True)
            assert proof == expected, (old, size)
            assert verify_consistency(old, size, roots[old], roots[size], proof)
