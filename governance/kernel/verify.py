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

Every passkey approval in the log is checked too (``governance.kernel.passkey_audit``): its
signed statement says what the logged approval says, and the approver's registered key signed
it (in a log verified from its first entry; ``Result.passkey_approvals`` counts them).

A revoked key (``revoked``: key id -> revocation time, in the headers' ISO format) stays
valid for what it signed before its revocation; an entry or checkpoint it signed later
(by the signed time) is a failure.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.kernel.merkle import EMPTY_ROOT, perfect_levels, prefix_root
from governance.kernel.passkey_audit import PasskeyAudit, may_concern_passkeys

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
    #: Passkey approvals whose statement, key and signature hold (and how many of them
    #: carry the authenticator's user-verification flag).
    passkey_approvals: int = 0
    passkey_user_verified: int = 0

    def passkey_line(self) -> str:
        return (
            f"{self.passkey_approvals} passkey approval(s) verified "
            f"({self.passkey_user_verified} with user verification)"
        )

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
    """What a Merkle leaf commits to: ``<entry hash hex>:<key id>:<signature hex>`` in ASCII."""
    return f"{entry_hash}:{key_id}:{signature}".encode()


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


@dataclass
class _Walk:
    """What one pass over a run of entries found (one process's share in a parallel check)."""

    result: Result
    leaves: list[bytes]
    first_seq: int
    first_prev: str
    last_hash: str
    next_seq: int


def _load_keys(public_keys: dict[str, str]) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for kid, pub in public_keys.items():
        try:
            keys[kid] = Ed25519PublicKey.from_public_bytes(bytes.fromhex(pub))
        except ValueError:
            raise VerificationFailed(None, f"public key {kid} is malformed") from None
    return keys


@dataclass(frozen=True)
class _WalkPlan:
    """How one chain pass runs. ``start_seq``/``start_prev`` None: take them from the first
    entry (a parallel worker's share; the caller then checks that the shares join up)."""

    covered: int
    all_signatures: bool
    chain_only: bool
    collect_leaves: bool
    start_seq: int | None
    start_prev: str | None
    extra_check: Callable[[Entry], str | None] | None = None
    progress: Callable[[int], None] | None = None
    progress_every: int = 10_000
    revoked: dict[str, str] | None = None


def _signed_time(header: bytes) -> str:
    """The ``time`` a signed header names (the last key but ``v`` in RFC 8785 order)."""
    found = header.rfind(b'"time":"')
    end = header.find(b'"', found + 8)
    return header[found + 8 : end].decode("ascii", "replace") if found >= 0 else ""


def _revocation_problem(kid: str, signed_time: str, revoked: dict[str, str]) -> str | None:
    when = revoked.get(kid)
    if when is not None and signed_time > when:
        return f"signed by key {kid} at {signed_time}, after its revocation at {when}"
    return None


def _start_prev_of(first: Entry) -> str:
    """The previous hash the first entry of a share names (its header's ``prev``)."""
    found = first[1].find(b'"prev":"')
    return first[1][found + 8 : found + 72].decode("ascii", "replace") if found >= 0 else ""


def _walk(entries: Iterable[Entry], keys: dict[str, Ed25519PublicKey], plan: _WalkPlan) -> _Walk:  # noqa: C901, PLR0912, PLR0915 - the hot per-entry loop: a helper would cost a call per entry
    """The chain pass (see :class:`_WalkPlan`)."""
    result = Result(True, 0)
    leaves: list[bytes] = []
    iterator = iter(entries)
    first = next(iterator, None)
    if first is None:
        seq0 = plan.start_seq or 1
        prev0 = plan.start_prev or GENESIS_HASH
        return _Walk(result, leaves, seq0, prev0, prev0, seq0)
    start_seq = first[0] if plan.start_seq is None else plan.start_seq
    start_prev = _start_prev_of(first) if plan.start_prev is None else plan.start_prev
    # The plan, bound to local names once: the loop below reads them for every entry.
    covered, all_signatures, collect_leaves = plan.covered, plan.all_signatures, plan.collect_leaves
    extra_check, progress, progress_every = plan.extra_check, plan.progress, plan.progress_every
    revoked = plan.revoked or {}
    sha256 = hashlib.sha256
    signature_format = _SIGNATURE.fullmatch
    check_sigs = not plan.chain_only
    add_leaf = leaves.append
    expected = start_seq
    prev = start_prev.encode()
    next_progress = start_seq - 1 + progress_every
    # This loop runs a million times per audit: names are bound locally and the per-entry
    # work is two SHA-256s, one formatted needle and one substring search. RFC 8785 sorts
    # keys, so payload digest, previous hash and sequence number sit side by side in every
    # header, and one search checks all three.
    link_of = b'"payload_sha256":"%s","prev":"%s","seq":%d,'.__mod__
    leaf_of = b"\x00%s:%s:%s".__mod__
    try:
        for entry in itertools.chain((first,), iterator):
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
            if link_of((sha256(payload).hexdigest().encode(), prev, seq)) not in header:
                raise VerificationFailed(seq, _link_problem(header, payload, prev, seq))
            prev = entry_hash.encode()
            if check_sigs:
                if kid not in keys:
                    raise VerificationFailed(seq, f"signed by unknown key {kid!r}")
                if revoked and kid in revoked:
                    late = _revocation_problem(kid, _signed_time(header), revoked)
                    if late:
                        raise VerificationFailed(seq, late)
                if all_signatures or seq > covered:
                    # Entries under a checkpoint need no check here: their leaf commits to the
                    # signature text, so any change to it changes the checkpoint's root.
                    if signature_format(signature) is None:
                        raise VerificationFailed(seq, "signature is not 64 bytes of lowercase hex")
                    if not _verify_sig(keys[kid], signature, bytes.fromhex(entry_hash)):
                        raise VerificationFailed(seq, f"signature does not verify with key {kid}")
                    result.signatures_checked += 1
                if collect_leaves:
                    add_leaf(sha256(leaf_of((prev, kid.encode(), signature.encode()))).digest())
            if extra_check is not None:
                problem = extra_check(entry)
                if problem:
                    raise VerificationFailed(seq, problem)
            expected = seq + 1
            if progress is not None and seq >= next_progress:
                progress(seq - start_seq + 1)
                next_progress += progress_every
    except VerificationFailed as failure:
        result.ok = False
        result.first_bad_seq = failure.seq
        result.reason = failure.reason
    result.checked = expected - start_seq
    return _Walk(result, leaves, start_seq, start_prev, prev.decode(), expected)


def _check_tree(
    result: Result,
    leaves: list[bytes],
    checkpoints: Sequence[CheckpointRecord],
    kept_checkpoints: Sequence[CheckpointRecord],
    keys: dict[str, Ed25519PublicKey],
) -> None:
    """Rebuild the Merkle tree once and check every checkpoint's root and signature against it."""
    sized = sorted(
        [(c, "checkpoint") for c in checkpoints]
        + [(c, "kept checkpoint") for c in kept_checkpoints],
        key=lambda pair: pair[0].tree_size,
    )
    size = len(leaves)
    levels = perfect_levels(leaves)
    for cp, label in sized:
        if cp.tree_size < 1:
            raise VerificationFailed(None, f"a {label} has an impossible size {cp.tree_size}")
        if cp.tree_size > size:
            raise VerificationFailed(
                None,
                f"the log has {size} entries but a {label} covers {cp.tree_size}: "
                "the log was cut back or entries are missing at its end",
            )
        _check_checkpoint(cp, label, prefix_root(levels, cp.tree_size), keys)
        result.checkpoints_verified += 1
    result.tree_size = size
    result.root_hash = (prefix_root(levels, size) if size else EMPTY_ROOT).hex()


def _check_revoked_checkpoints(
    checkpoints: Sequence[CheckpointRecord], revoked: dict[str, str] | None
) -> None:
    """A checkpoint signed by a revoked key after its revocation is a failure."""
    for cp in sorted(checkpoints, key=lambda c: c.tree_size):
        late = _revocation_problem(cp.key_id, cp.time, revoked or {})
        if late:
            raise VerificationFailed(cp.tree_size, f"checkpoint at size {cp.tree_size}: {late}")


def _covered(checkpoints: Sequence[CheckpointRecord], kept: Sequence[CheckpointRecord]) -> int:
    return max((c.tree_size for c in [*checkpoints, *kept]), default=0)


def verify_entries(  # noqa: PLR0913 - keyword-only public API: each is a documented option
    entries: Iterable[Entry],
    *,
    public_keys: dict[str, str],
    checkpoints: Sequence[CheckpointRecord] = (),
    kept_checkpoints: Sequence[CheckpointRecord] = (),
    all_signatures: bool = False,
    chain_only: bool = False,
    start_seq: int = 1,
    start_prev: str = GENESIS_HASH,
    extra_check: Callable[[Entry], str | None] | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
    revoked: dict[str, str] | None = None,
    passkeys: bool = True,
) -> Result:
    """Check a run of entries in this process; see the module docstring. Returns, never raises.

    ``chain_only`` checks sequence, hashes and links but no signatures or checkpoints (for
    measuring the chain pass; never what `events verify` reports as a full verification).
    Checkpoints need the whole tree, so they are checked only from the first entry; so are
    passkey approvals (``passkeys``), which need the registrations before them.
    """
    rebuild = start_seq == 1 and not chain_only
    audit = PasskeyAudit() if rebuild and passkeys else None
    if audit is not None:
        extra_check = _both(extra_check, audit.check)
    try:
        keys = _load_keys(public_keys)
        plan = _WalkPlan(
            covered=_covered(checkpoints, kept_checkpoints) if rebuild else 0,
            all_signatures=all_signatures,
            chain_only=chain_only,
            collect_leaves=rebuild,
            start_seq=start_seq,
            start_prev=start_prev,
            extra_check=extra_check,
            progress=progress,
            progress_every=progress_every,
            revoked=revoked,
        )
        walk = _walk(entries, keys, plan)
        result = walk.result
        if result.ok and rebuild:
            _check_revoked_checkpoints([*checkpoints, *kept_checkpoints], revoked)
            _check_tree(result, walk.leaves, checkpoints, kept_checkpoints, keys)
    except VerificationFailed as failure:
        return Result(False, 0, failure.seq, failure.reason)
    if not result.ok:
        return result
    if audit is not None:
        result.passkey_approvals = audit.verified
        result.passkey_user_verified = audit.user_verified
    if not rebuild:
        result.tree_size = walk.next_seq - 1
    if start_seq != 1:
        result.notes.append(
            "started mid-log: checkpoints and passkey approvals not checked, every signature checked"
        )
    if progress is not None:
        progress(result.checked)
    return result


def _both(
    first: Callable[[Entry], str | None] | None, second: Callable[[Entry], str | None]
) -> Callable[[Entry], str | None]:
    if first is None:
        return second

    def check(entry: Entry) -> str | None:
        return first(entry) or second(entry)

    return check


def passkey_pass(path: str, result: Result) -> Result:
    """The passkey approvals of a bundle file whose chain ``result`` verified, in one more
    streaming pass (the parallel chain pass splits the file; this one needs log order). Only
    lines that mention passkeys are parsed."""
    audit = PasskeyAudit()
    try:
        with open(path, "rb") as handle:
            handle.readline()  # the metadata line
            wanted = (line for line in handle if may_concern_passkeys(line))
            for entry in _parse_lines(wanted, 0):
                problem = audit.check(entry)
                if problem:
                    return Result(False, result.checked, entry[0], problem)
    except VerificationFailed as failure:
        return Result(False, result.checked, failure.seq, failure.reason)
    result.passkey_approvals = audit.verified
    result.passkey_user_verified = audit.user_verified
    return result


def _link_problem(header: bytes, payload: bytes, prev: bytes, seq: int) -> str:
    """Say which of the three linked fields is wrong (only on the failure path)."""
    if b'"seq":%d,' % seq not in header:
        return "the signed entry names another sequence number (rows swapped or renumbered)"
    if b'"prev":"' + prev + b'"' not in header:
        return "previous-hash link broken (an earlier entry was altered, removed or reordered)"
    if b'"payload_sha256":"' + hashlib.sha256(payload).hexdigest().encode() + b'"' not in header:
        return "payload does not match its signed digest (payload altered)"
    return "the signed entry is not in the expected canonical form"


def _check_checkpoint(
    cp: CheckpointRecord, label: str, root: bytes, keys: dict[str, Ed25519PublicKey]
) -> None:
    seq = cp.tree_size
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
    if root.hex() != cp.root_hash:
        raise VerificationFailed(
            seq,
            f"{label} at size {cp.tree_size}: Merkle root differs from the log "
            "(an entry's signature or key id was altered, or history was rewritten)",
        )


# --- bundles -------------------------------------------------------------------


def write_bundle(  # noqa: PLR0913 - keyword-only public API: each is a documented option
    out: IO[bytes],
    *,
    entries: Iterable[Entry],
    public_keys: dict[str, str],
    checkpoints: Sequence[CheckpointRecord],
    meta: dict[str, object],
    revoked: dict[str, str] | None = None,
) -> int:
    """First line: JSON metadata (keys, with a revoked key's ``status`` and ``revoked_at``;
    checkpoints). Then one tab-separated line per entry.

    RFC 8785 JSON never contains a raw tab or newline, so the canonical bytes go in verbatim.
    """
    head = {
        "format": BUNDLE_FORMAT,
        **meta,
        "keys": [
            {"kid": k, "algorithm": "ed25519", "public_key": v}
            | ({"status": "revoked", "revoked_at": revoked[k]} if revoked and k in revoked else {})
            for k, v in public_keys.items()
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


def _parse_lines(lines: Iterable[bytes], first_number: int) -> Iterator[Entry]:
    for number, line in enumerate(lines, start=first_number):
        parts = line[:-1].split(b"\t") if line.endswith(b"\n") else line.split(b"\t")
        if len(parts) != 6:
            raise VerificationFailed(None, f"bundle line {number or '?'} is malformed")
        seq_text, entry_hash, kid, signature, header, payload = parts
        try:
            seq = int(seq_text)
            hash_text, kid_text, sig_text = (
                entry_hash.decode("ascii"),
                kid.decode("ascii"),
                signature.decode("ascii"),
            )
        except (ValueError, UnicodeDecodeError):
            raise VerificationFailed(
                None, f"bundle line {number or '?'}: malformed fields"
            ) from None
        yield seq, header, payload, hash_text, kid_text, sig_text


def read_bundle(handle: IO[bytes]) -> tuple[dict[str, Any], Iterator[Entry]]:
    first = handle.readline()
    try:
        head = json.loads(first)
    except ValueError as exc:
        raise VerificationFailed(None, f"not a log bundle: {exc}") from None
    if not isinstance(head, dict) or head.get("format") != BUNDLE_FORMAT:
        raise VerificationFailed(None, f"not a log bundle (expected format {BUNDLE_FORMAT})")

    return head, _parse_lines(handle, 2)


def _bundle_meta(
    head: dict[str, Any], trusted_keys: set[str] | None
) -> tuple[dict[str, str], list[CheckpointRecord], dict[str, str]]:
    try:
        keys = {str(k["kid"]): str(k["public_key"]) for k in head.get("keys", [])}
        revoked = {
            str(k["kid"]): str(k["revoked_at"])
            for k in head.get("keys", [])
            if k.get("status") == "revoked" or k.get("revoked_at")
        }
        checkpoints = [CheckpointRecord.from_json(c) for c in head.get("checkpoints", [])]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise VerificationFailed(None, f"bundle metadata is malformed: {exc}") from None
    if trusted_keys is not None:
        keys = {k: v for k, v in keys.items() if k in trusted_keys}
    for kid, pub in keys.items():
        try:
            if hashlib.sha256(bytes.fromhex(pub)).hexdigest()[:16] != kid:
                raise VerificationFailed(None, f"key id {kid} does not match its public key")
        except ValueError:
            raise VerificationFailed(None, f"public key {kid} is malformed") from None
    return keys, checkpoints, revoked


def verify_bundle(
    handle: IO[bytes],
    *,
    kept: Sequence[CheckpointRecord] = (),
    trusted_keys: set[str] | None = None,
    all_signatures: bool = False,
) -> Result:
    """Verify a bundle from an open file, in this process."""
    try:
        head, entries = read_bundle(handle)
        keys, checkpoints, revoked = _bundle_meta(head, trusted_keys)
        return verify_entries(
            entries,
            public_keys=keys,
            checkpoints=checkpoints,
            kept_checkpoints=kept,
            all_signatures=all_signatures,
            revoked=revoked,
        )
    except VerificationFailed as failure:
        return Result(False, 0, failure.seq, failure.reason)
    except (
        ValueError,
        TypeError,
        UnicodeError,
    ) as exc:  # malformed input must never crash an audit
        return Result(False, 0, None, f"bundle is malformed: {exc}")


@dataclass(frozen=True)
class _Share:
    """A worker's share of a bundle file: the entry lines that start in bytes [begin, end)."""

    path: str
    begin: int
    end: int
    public_keys: dict[str, str]
    covered: int
    all_signatures: bool
    is_first: bool
    revoked: dict[str, str]


def _verify_share(share: _Share) -> tuple[Result, int, str, str, int, bytes]:
    """Check one :class:`_Share` (in a worker process)."""
    path, begin, end, is_first = share.path, share.begin, share.end, share.is_first
    try:
        keys = _load_keys(share.public_keys)
        with open(path, "rb") as handle:
            if is_first:
                handle.readline()  # the metadata line
            else:
                handle.seek(begin - 1)
                handle.readline()  # finish the line that straddles `begin`
            first_line = 2 if is_first else 0

            def lines() -> Iterator[bytes]:
                while handle.tell() < end:
                    line = handle.readline()
                    if not line:
                        return
                    yield line

            plan = _WalkPlan(
                covered=share.covered,
                all_signatures=share.all_signatures,
                chain_only=False,
                collect_leaves=True,
                start_seq=1 if is_first else None,
                start_prev=GENESIS_HASH if is_first else None,
                revoked=share.revoked,
            )
            walk = _walk(_parse_lines(lines(), first_line), keys, plan)
    except VerificationFailed as failure:
        return Result(False, 0, failure.seq, failure.reason), 0, "", "", 0, b""
    except (ValueError, TypeError, UnicodeError) as exc:
        return Result(False, 0, None, f"bundle is malformed: {exc}"), 0, "", "", 0, b""
    return (
        walk.result,
        walk.first_seq,
        walk.first_prev,
        walk.last_hash,
        walk.next_seq,
        b"".join(walk.leaves),
    )


def verify_bundle_file(  # noqa: PLR0913 - keyword-only public API: each is a documented option
    path: str,
    *,
    kept: Sequence[CheckpointRecord] = (),
    trusted_keys: set[str] | None = None,
    all_signatures: bool = False,
    workers: int | None = None,
    min_parallel_bytes: int = 1_000_000,
) -> Result:
    """Verify a bundle file using several processes: each checks the chain of one slice of the
    file, then the slices must join up (sequence and hash at every seam) and the Merkle tree of
    all their leaves must match every checkpoint."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_all_start_methods, get_context

    workers = workers or min(os.cpu_count() or 1, 8)
    try:
        with open(path, "rb") as handle:
            head, _ = read_bundle(handle)
            data_start = handle.tell()
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
        keys, checkpoints, revoked = _bundle_meta(head, trusted_keys)
    except VerificationFailed as failure:
        return Result(False, 0, failure.seq, failure.reason)
    if workers <= 1 or size - data_start < min_parallel_bytes:
        with open(path, "rb") as handle:
            return verify_bundle(
                handle, kept=kept, trusted_keys=trusted_keys, all_signatures=all_signatures
            )
    step = (size - data_start) // workers + 1
    bounds = [
        (data_start + i * step, min(size, data_start + (i + 1) * step)) for i in range(workers)
    ]
    covered = _covered(checkpoints, kept)
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context(method)) as pool:
        futures = [
            pool.submit(
                _verify_share,
                _Share(path, a, b, keys, covered, all_signatures, is_first=i == 0, revoked=revoked),
            )
            for i, (a, b) in enumerate(bounds)
        ]
        shares = [f.result() for f in futures]
    total = Result(True, 0)
    leaves: list[bytes] = []
    expected_seq, expected_prev = 1, GENESIS_HASH
    for share, first_seq, first_prev, last_hash, next_seq, blob in shares:
        if share.checked == 0 and share.ok:
            continue  # an empty slice (tiny bundle)
        if share.ok and (first_seq != expected_seq or first_prev != expected_prev):
            problem = (
                f"expected sequence number {expected_seq}, found {first_seq} (gap, duplicate or reordering)"
                if first_seq != expected_seq
                else "previous-hash link broken (an earlier entry was altered, removed or reordered)"
            )
            return Result(
                False,
                total.checked,
                first_seq if first_seq == expected_seq else expected_seq,
                problem,
            )
        if not share.ok:
            share.checked += total.checked
            return share
        total.checked += share.checked
        total.signatures_checked += share.signatures_checked
        leaves.extend(blob[i : i + 32] for i in range(0, len(blob), 32))
        expected_seq, expected_prev = next_seq, last_hash
    try:
        _check_revoked_checkpoints([*checkpoints, *kept], revoked)
        _check_tree(total, leaves, checkpoints, kept, _load_keys(keys))
    except VerificationFailed as failure:
        return Result(False, total.checked, failure.seq, failure.reason)
    return passkey_pass(path, total)


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
    parser.add_argument(
        "--workers", type=int, default=None, help="processes to use (default: one per core)"
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
        result = verify_bundle_file(
            args.bundle,
            kept=kept,
            trusted_keys=set(args.trust_key) if args.trust_key else None,
            all_signatures=args.all_signatures,
            workers=args.workers,
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
        print(result.passkey_line())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
