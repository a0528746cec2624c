"""Verify the governance log: Django-free, so an auditor can run ``python -m governance.verify BUNDLE``.

Needs only the standard library and ``cryptography``. The same core checks the
live database (``manage.py events verify``) and exported bundles.

What is checked, entry by entry: gapless sequence numbers starting at 1; the
entry hash is SHA-256 of the stored canonical header; the header names its own
sequence number, the previous entry's hash and the SHA-256 of the stored
canonical payload; the signing key is known. Then the log's Merkle tree is
rebuilt as the entries stream past and every checkpoint's root and Ed25519
signature are checked at its size; entries past the newest checkpoint (or all
entries, with ``all_signatures``) have their own Ed25519 signature checked. A
Merkle leaf commits to the entry hash, the key id and the signature, so a
checkpoint proves the signatures of every entry it covers as well.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.merkle import node_hash

GENESIS_HASH = "0" * 64
_SIGNATURE = re.compile(r"[0-9a-f]{128}")
BUNDLE_FORMAT = "governance-log-bundle/1"

# (seq, header bytes, payload bytes, entry hash hex, key id, signature hex)
Entry = tuple[int, bytes, bytes, str, str, str]


@dataclass(frozen=True)
class CheckpointRecord:
    tree_size: int
    root_hash: str
    time: str
    key_id: str
    signature: str
    body: bytes

    def as_json(self) -> dict[str, object]:
        return {
            "size": self.tree_size,
            "root": self.root_hash,
            "time": self.time,
            "kid": self.key_id,
            "signature": self.signature,
            "body": self.body.decode(),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> CheckpointRecord:
        return cls(
            tree_size=int(data["size"]),  # type: ignore[call-overload]
            root_hash=str(data["root"]),
            time=str(data["time"]),
            key_id=str(data["kid"]),
            signature=str(data["signature"]),
            body=str(data["body"]).encode(),
        )


@dataclass
class Result:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""
    checkpoints_verified: int = 0
    signatures_checked: int = 0
    tree_size: int = 0
    root_hash: str = ""
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.ok:
            return f"OK: {self.checked} events verified"
        where = f"seq {self.first_bad_seq}" if self.first_bad_seq is not None else "log"
        return f"FAILED at {where}: {self.reason}"


class VerificationFailed(Exception):
    def __init__(self, seq: int | None, reason: str):
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


def leaf_input(entry_hash: str, key_id: str, signature: str) -> bytes:
    """What a Merkle leaf commits to: entry hash, key id and signature."""
    return bytes.fromhex(entry_hash) + key_id.encode() + bytes.fromhex(signature)


def checkpoint_body(tree_size: int, root_hash: str, time: str) -> bytes:
    """RFC 8785 bytes of {"root", "size", "time"} (keys sorted, no spaces), written by hand to stay dependency-free."""
    return (
        b'{"root":"'
        + root_hash.encode()
        + b'","size":'
        + str(tree_size).encode()
        + b',"time":"'
        + time.encode()
        + b'"}'
    )


def _verify_sig(public: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    try:
        public.verify(bytes.fromhex(signature_hex), message)
        return True
    except (InvalidSignature, ValueError):
        return False


class Frontier:
    """The right edge of a Merkle tree (RFC 9162 shape), so the root of any prefix is O(log n) away."""

    __slots__ = ("sizes", "stack")

    def __init__(self) -> None:
        self.stack: list[bytes] = []
        self.sizes: list[int] = []

    def append(self, leaf_hash: bytes) -> None:
        stack, sizes = self.stack, self.sizes
        stack.append(leaf_hash)
        sizes.append(1)
        while len(sizes) > 1 and sizes[-1] == sizes[-2]:
            right = stack.pop()
            sizes.pop()
            stack[-1] = node_hash(stack[-1], right)
            sizes[-1] *= 2

    def root(self) -> bytes:
        if not self.stack:
            return hashlib.sha256(b"").digest()
        root = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            root = node_hash(left, root)
        return root


def verify_entries(
    entries: Iterable[Entry],
    *,
    public_keys: dict[str, str],
    checkpoints: Sequence[CheckpointRecord] = (),
    kept_checkpoints: Sequence[CheckpointRecord] = (),
    all_signatures: bool = False,
    start_seq: int = 1,
    start_prev: str = GENESIS_HASH,
    extra_check: Callable[[Entry], str | None] | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> Result:
    """Check a run of entries; see the module docstring. Never raises on bad data: returns a Result."""
    keys: dict[str, Ed25519PublicKey] = {}
    for kid, pub in public_keys.items():
        try:
            keys[kid] = Ed25519PublicKey.from_public_bytes(bytes.fromhex(pub))
        except ValueError:
            return Result(False, 0, None, f"public key {kid} is malformed")

    from_start = start_seq == 1
    # Checkpoints can only be checked when the whole tree is rebuilt from the first entry.
    sized = sorted(
        [(c, "checkpoint") for c in checkpoints]
        + [(c, "kept checkpoint") for c in kept_checkpoints],
        key=lambda pair: pair[0].tree_size,
    )
    covered = max((c.tree_size for c, _ in sized), default=0) if from_start else 0
    sha256 = hashlib.sha256
    frontier = Frontier()
    leaf_prefix = b"\x00"
    expected = start_seq
    prev = start_prev
    pending = 0
    result = Result(True, 0)
    try:
        for entry in entries:
            seq, header, payload, entry_hash, kid, signature = entry
            if seq != expected:
                raise VerificationFailed(
                    expected,
                    f"expected sequence number {expected}, found {seq} (gap, duplicate or reordering)",
                )
            if sha256(header).hexdigest() != entry_hash:
                raise VerificationFailed(
                    seq, "entry hash does not match the canonical bytes (entry altered)"
                )
            if b'"seq":%d,' % seq not in header:
                raise VerificationFailed(
                    seq,
                    "the signed entry names another sequence number (rows swapped or renumbered)",
                )
            if b'"prev":"' + prev.encode() + b'"' not in header:
                raise VerificationFailed(
                    seq,
                    "previous-hash link broken (an earlier entry was altered, removed or reordered)",
                )
            if b'"payload_sha256":"' + sha256(payload).hexdigest().encode() + b'"' not in header:
                raise VerificationFailed(
                    seq, "payload does not match its signed digest (payload altered)"
                )
            public = keys.get(kid)
            if public is None:
                raise VerificationFailed(seq, f"signed by unknown key {kid!r}")
            if not _SIGNATURE.fullmatch(signature):
                raise VerificationFailed(seq, "signature is not 64 bytes of lowercase hex")
            if all_signatures or seq > covered:
                if not _verify_sig(public, signature, bytes.fromhex(entry_hash)):
                    raise VerificationFailed(seq, f"signature does not verify with key {kid}")
                result.signatures_checked += 1
            if extra_check is not None:
                problem = extra_check(entry)
                if problem:
                    raise VerificationFailed(seq, problem)
            if from_start:
                frontier.append(
                    sha256(leaf_prefix + leaf_input(entry_hash, kid, signature)).digest()
                )
                while pending < len(sized) and sized[pending][0].tree_size == seq:
                    _check_checkpoint(sized[pending][0], sized[pending][1], frontier, keys, seq)
                    result.checkpoints_verified += 1
                    pending += 1
            prev = entry_hash
            expected += 1
            result.checked += 1
            if progress is not None and result.checked % progress_every == 0:
                progress(result.checked)
        if from_start and pending < len(sized):
            cp, label = sized[pending]
            raise VerificationFailed(
                None,
                f"the log has {expected - 1} entries but a {label} covers {cp.tree_size}: "
                "the log was cut back or entries are missing at its end",
            )
    except VerificationFailed as failure:
        result.ok = False
        result.first_bad_seq = failure.seq
        result.reason = failure.reason
        return result
    result.tree_size = expected - 1
    result.root_hash = frontier.root().hex() if from_start else ""
    if not from_start:
        result.notes.append("started mid-log: checkpoints not checked, every signature checked")
    if progress is not None:
        progress(result.checked)
    return result


def _check_checkpoint(
    cp: CheckpointRecord,
    label: str,
    frontier: Frontier,
    keys: dict[str, Ed25519PublicKey],
    seq: int,
) -> None:
    public = keys.get(cp.key_id)
    if public is None:
        raise VerificationFailed(
            seq, f"{label} at size {cp.tree_size} is signed by unknown key {cp.key_id!r}"
        )
    if not _SIGNATURE.fullmatch(cp.signature):
        raise VerificationFailed(
            seq, f"{label} at size {cp.tree_size}: signature is not lowercase hex"
        )
    if cp.body != checkpoint_body(cp.tree_size, cp.root_hash, cp.time):
        raise VerificationFailed(
            seq, f"{label} at size {cp.tree_size}: signed body does not match its fields"
        )
    if not _verify_sig(public, cp.signature, cp.body):
        raise VerificationFailed(seq, f"{label} at size {cp.tree_size}: signature does not verify")
    if frontier.root().hex() != cp.root_hash:
        raise VerificationFailed(
            seq,
            f"{label} at size {cp.tree_size}: Merkle root differs from the log "
            "(an entry's signature or key id was altered, or history was rewritten)",
        )


# --- bundles -------------------------------------------------------------------


def write_bundle(
    out: IO[bytes],
    *,
    entries: Iterable[Entry],
    public_keys: dict[str, str],
    checkpoints: Sequence[CheckpointRecord],
    meta: dict[str, object],
) -> int:
    """First line: JSON metadata (keys, checkpoints). Then one tab-separated line per entry.

    RFC 8785 JSON never contains a raw tab or newline, so the canonical bytes go in verbatim.
    """
    head = {
        "format": BUNDLE_FORMAT,
        **meta,
        "keys": [
            {"kid": k, "algorithm": "ed25519", "public_key": v} for k, v in public_keys.items()
        ],
        "checkpoints": [c.as_json() for c in checkpoints],
    }
    out.write(json.dumps(head, sort_keys=True).encode() + b"\n")
    count = 0
    for seq, header, payload, entry_hash, kid, signature in entries:
        out.write(
            b"%d\t%s\t%s\t%s\t%s\t%s\n"
            % (seq, entry_hash.encode(), kid.encode(), signature.encode(), header, payload)
        )
        count += 1
    return count


def read_bundle(handle: IO[bytes]) -> tuple[dict[str, Any], Iterator[Entry]]:
    first = handle.readline()
    try:
        head = json.loads(first)
    except ValueError as exc:
        raise VerificationFailed(None, f"not a log bundle: {exc}") from None
    if not isinstance(head, dict) or head.get("format") != BUNDLE_FORMAT:
        raise VerificationFailed(None, f"not a log bundle (expected format {BUNDLE_FORMAT})")

    def lines() -> Iterator[Entry]:
        for number, line in enumerate(handle, start=2):
            parts = line.rstrip(b"\n").split(b"\t")
            if len(parts) != 6:
                raise VerificationFailed(None, f"bundle line {number} is malformed")
            try:
                seq = int(parts[0])
            except ValueError:
                raise VerificationFailed(
                    None, f"bundle line {number}: bad sequence number"
                ) from None
            yield (
                seq,
                parts[4],
                parts[5],
                parts[1].decode("ascii", "replace"),
                parts[2].decode("ascii", "replace"),
                parts[3].decode("ascii", "replace"),
            )

    return head, lines()


def verify_bundle(
    handle: IO[bytes],
    *,
    kept: Sequence[CheckpointRecord] = (),
    trusted_keys: set[str] | None = None,
    all_signatures: bool = False,
) -> Result:
    try:
        head, entries = read_bundle(handle)
        keys = {str(k["kid"]): str(k["public_key"]) for k in head.get("keys", [])}
        checkpoints = [CheckpointRecord.from_json(c) for c in head.get("checkpoints", [])]
    except VerificationFailed as failure:
        return Result(False, 0, failure.seq, failure.reason)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Result(False, 0, None, f"bundle metadata is malformed: {exc}")
    if trusted_keys is not None:
        keys = {k: v for k, v in keys.items() if k in trusted_keys}
    for kid, pub in keys.items():
        try:
            if hashlib.sha256(bytes.fromhex(pub)).hexdigest()[:16] != kid:
                return Result(False, 0, None, f"key id {kid} does not match its public key")
        except ValueError:
            return Result(False, 0, None, f"public key {kid} is malformed")
    try:
        return verify_entries(
            entries,
            public_keys=keys,
            checkpoints=checkpoints,
            kept_checkpoints=kept,
            all_signatures=all_signatures,
        )
    except VerificationFailed as failure:
        return Result(False, 0, failure.seq, failure.reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m governance.verify",
        description="Verify an exported governance log bundle offline (no Django, no database).",
    )
    parser.add_argument("bundle", help="file written by `manage.py events export`")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="FILE",
        help="a checkpoint you kept earlier (JSON from /api/v1/checkpoints/); the log must still contain it",
    )
    parser.add_argument(
        "--trust-key",
        action="append",
        metavar="KID",
        help="accept only these key ids (default: the bundle's keys)",
    )
    parser.add_argument(
        "--all-signatures", action="store_true", help="check every entry's signature too"
    )
    args = parser.parse_args(argv)
    kept = []
    for path in args.checkpoint:
        try:
            with open(path, "rb") as fh:
                kept.append(CheckpointRecord.from_json(json.load(fh)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"FAILED: cannot read checkpoint {path}: {exc}", file=sys.stderr)
            return 1
    try:
        with open(args.bundle, "rb") as handle:
            result = verify_bundle(
                handle,
                kept=kept,
                trusted_keys=set(args.trust_key) if args.trust_key else None,
                all_signatures=args.all_signatures,
            )
    except OSError as exc:
        print(f"FAILED: cannot read {args.bundle}: {exc}", file=sys.stderr)
        return 1
    print(result.line(), file=sys.stdout if result.ok else sys.stderr)
    if result.ok:
        print(
            f"tree size {result.tree_size}, root {result.root_hash}, "
            f"{result.checkpoints_verified} checkpoint(s), {result.signatures_checked} entry signature(s) checked"
        )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
