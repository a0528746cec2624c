"""RFC 9162 Merkle tree (same tree as RFC 6962): root hashes, inclusion and consistency proofs."""

# Standard library only, on purpose: a standalone auditor's verifier imports this file without
# Django or any third-party package, so it can be audited (and vendored) on its own.

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
# MTH({}) = HASH() (RFC 9162 2.1.1): the root of the empty tree is SHA-256 of no input at all.
EMPTY_ROOT = hashlib.sha256(b"").digest()

# Domain separation (RFC 9162 2.1.1): a leaf hash can never be passed off as an interior node
# hash and vice versa, which is what stops second-preimage attacks on the tree.
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """MTH of a one-entry list: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over already-hashed leaves; the empty tree's root is SHA-256(b"")."""
    if not leaf_hashes:
        return EMPTY_ROOT
    _check_leaf_hashes(leaf_hashes)
    return _root(leaf_hashes)


def perfect_levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every perfect subtree's hash: ``levels[h][j]`` covers leaves ``[j * 2**h, (j + 1) * 2**h)``.

    About n hashes in all, after which the root of any prefix is O(log n) (see prefix_root):
    how a verifier checks many checkpoints in one pass.
    """
    sha256 = hashlib.sha256
    levels = [list(leaf_hashes)]
    current = levels[0]
    while len(current) > 1:
        pairs = len(current) // 2 * 2
        current = [
            sha256(b"\x01" + current[i] + current[i + 1]).digest() for i in range(0, pairs, 2)
        ]
        levels.append(current)
    return levels


def prefix_root(levels: Sequence[Sequence[bytes]], size: int) -> bytes:
    """MTH of the first ``size`` leaves, from perfect_levels: the RFC 9162 split is the binary form of size."""
    if size == 0:
        return EMPTY_ROOT
    if not 0 < size <= len(levels[0]):
        raise ValueError(f"size {size!r} is outside a tree of {len(levels[0])} leaves")
    nodes: list[bytes] = []
    offset = 0
    for height in range(size.bit_length() - 1, -1, -1):
        if size >> height & 1:
            nodes.append(levels[height][offset >> height])
            offset += 1 << height
    root = nodes[-1]
    for left in reversed(nodes[:-1]):
        root = node_hash(left, root)
    return root


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 2.1.3.1, ordered from the leaf's sibling up to the root."""
    n = len(leaf_hashes)
    if not _is_int(index) or not 0 <= index < n:
        raise ValueError(f"leaf index {index!r} is outside a tree of {n} leaves")
    _check_leaf_hashes(leaf_hashes)
    # PATH recurses from the root down and appends each level's sibling *after* the deeper
    # path, so walk down iteratively, collect siblings top-down and reverse at the end.
    # The siblings are disjoint subtrees, so all their hashes together cost at most n hashes.
    siblings: list[bytes] = []
    lo, hi = 0, n
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            siblings.append(_root(leaf_hashes[mid:hi]))
            hi = mid
        else:
            siblings.append(_root(leaf_hashes[lo:mid]))
            lo = mid
    siblings.reverse()
    return siblings


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[n]) = SUBPROOF(old_size, D[n], true) of RFC 9162 2.1.4.1."""
    n = len(leaf_hashes)
    if not _is_int(old_size) or not 1 <= old_size <= n:
        raise ValueError(f"old size {old_size!r} must be between 1 and the tree size {n}")
    _check_leaf_hashes(leaf_hashes)
    if old_size == n:
        return []
    # SUBPROOF(m, D[lo:hi], b) unrolled: each step appends one subtree hash *after* the deeper
    # subproof, so collect them top-down and reverse; m stays relative to lo.
    tail: list[bytes] = []
    lo, hi, m = 0, n, old_size
    # b of SUBPROOF: true while the old tree is still a prefix subtree whose root the verifier
    # already has (its old root), so that node need not be sent.
    old_root_known = True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            tail.append(_root(leaf_hashes[lo + k : hi]))
            hi = lo + k
        else:
            tail.append(_root(leaf_hashes[lo : lo + k]))
            lo += k
            m -= k
            old_root_known = False
    tail.reverse()
    if old_root_known:
        return tail
    return [_root(leaf_hashes[lo:hi]), *tail]


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does `proof` show leaf `index` of a `tree_size` tree has this hash?

    Returns False, and never raises, on any malformed input, because the caller is an auditor
    fed untrusted data: a crash must not be confused with, or mask, a failed verification.
    """
    if not (_is_int(index) and _is_int(tree_size)):
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_hash_list(proof)):
        return False
    # Step 1.
    if not 0 <= index < tree_size:
        return False
    sha256 = hashlib.sha256
    prefix = _NODE_PREFIX
    # Steps 2 and 3.
    fn, sn = index, tree_size - 1
    r = leaf_hash
    # Step 4.
    for p in proof:
        # 4a: a proof node left over once the root is reached is garbage, not harmless.
        if sn == 0:
            return False
        # 4b.
        if fn & 1 or fn == sn:
            r = sha256(prefix + p + r).digest()
            # fn == sn with fn even: we are the rightmost node, promoted unpaired through the
            # levels where it had no right sibling; skip those levels.
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(prefix + r + p).digest()
        # 4c.
        fn >>= 1
        sn >>= 1
    # Step 5: sn == 0 rejects a proof that stops short of the root.
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the `old_size` tree a prefix of the `new_size` tree?

    The RFC algorithm covers 0 < old_size < new_size. The edges are decided here:
    equal sizes need an empty proof and equal roots; an empty old tree is a prefix of every
    tree, so old_size == 0 needs an empty proof and old_root equal to EMPTY_ROOT (the only root
    a size-0 tree has; anything else is a malformed tree head, so it is refused rather than
    ignored). Returns False, and never raises, on any malformed input.
    """
    decided = _consistency_edges(old_size, new_size, old_root, new_root, proof)
    if decided is not None:
        return decided
    return _consistency_path(old_size, new_size, old_root, new_root, proof)


def _consistency_edges(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool | None:
    """The verdict on malformed input and on the edges (an empty old tree, equal sizes);
    None when the RFC algorithm decides (0 < old_size < new_size)."""
    if not (_is_int(old_size) and _is_int(new_size)):
        return False
    if not (_is_hash(old_root) and _is_hash(new_root) and _is_hash_list(proof)):
        return False
    if not 0 <= old_size <= new_size:
        return False
    if old_size == 0:
        return len(proof) == 0 and old_root == EMPTY_ROOT and (new_size > 0 or new_root == old_root)
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    return None


def _consistency_path(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2 steps 1-7, for well-formed input with 0 < old_size < new_size."""
    # Step 1.
    if len(proof) == 0:
        return False
    path = list(proof)
    # Step 2: when old_size is a power of two the old tree is a complete subtree of the new one,
    # so its root is not sent (SUBPROOF's b) and the verifier supplies it itself.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    sha256 = hashlib.sha256
    prefix = _NODE_PREFIX
    # Step 3.
    fn, sn = old_size - 1, new_size - 1
    # Step 4: skip the levels where the old tree's last node is a right child inside a complete
    # subtree; path[0] is the hash of that whole subtree.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        # 6a.
        if sn == 0:
            return False
        # 6b.
        if fn & 1 or fn == sn:
            fr = sha256(prefix + c + fr).digest()
            sr = sha256(prefix + c + sr).digest()
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            # Right of the old tree: only the new tree includes this node.
            sr = sha256(prefix + sr + c).digest()
        # 6c.
        fn >>= 1
        sn >>= 1
    # Step 7.
    return sn == 0 and fr == old_root and sr == new_root


def _root(level: Sequence[bytes]) -> bytes:
    # Level by level instead of RFC's recursion: Python recursion and per-call slicing would be
    # far slower on a million leaves. RFC 9162 splits at the largest power of two k < n, so the
    # left subtree is always complete; the tree is therefore the plain left-filled binary tree
    # in which a level's unpaired last node is carried up unchanged (it gets no 0x01 hash).
    # Both definitions give the same root; the tests check this against a recursive transcription.
    sha256 = hashlib.sha256  # local binding: avoids a global+attribute lookup per node
    prefix = _NODE_PREFIX
    while len(level) > 1:
        paired = [
            sha256(prefix + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=False)
        ]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


def _split(n: int) -> int:
    # The largest power of two strictly below n (n > 1): RFC 9162's k.
    return 1 << ((n - 1).bit_length() - 1)


def _check_leaf_hashes(leaf_hashes: Sequence[bytes]) -> None:
    # Cheap (one pass of len) guard against passing raw leaf data, or hex strings, where leaf
    # hashes are expected: that mistake would otherwise give a valid-looking but wrong root.
    # Types first so that len() below cannot raise TypeError on, say, an int.
    if not set(map(type, leaf_hashes)) <= {bytes} or not set(map(len, leaf_hashes)) <= {HASH_SIZE}:
        raise ValueError(f"leaf hashes must be {HASH_SIZE}-byte bytes objects")


def _is_int(value: object) -> bool:
    # bool is an int subclass; True/False as a size or index is a caller bug, not a number.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_hash_list(proof: object) -> bool:
    # A bytes or str object is itself a Sequence; refuse it rather than iterate its items.
    if not isinstance(proof, Sequence) or isinstance(proof, (bytes, bytearray, str)):
        return False
    return all(_is_hash(p) for p in proof)
