"""Checkpoints: the signed tree head, and the verifier's view of one."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.kernel import merkle
from governance.kernel.events import keys as keystore
from governance.kernel.events import selectors
from governance.kernel.events.models import (
    Checkpoint,
)
from governance.kernel.events.services.appending import active_key, canonical, iso_time
from governance.kernel.verify import CheckpointRecord, checkpoint_body


@transaction.atomic
def checkpoint_create(*, actor: Any | None = None, force: bool = False) -> Checkpoint | None:
    """Sign the current tree head. Skipped (None) when the log has not grown since the last one.

    ``actor`` is who asked for it on demand (a platform administrator); None is the schedule.
    """
    from governance.kernel.permissions import can_make_checkpoint

    can_make_checkpoint(actor).require()
    size = selectors.log_size()
    last = Checkpoint.objects.order_by("-tree_size").first()
    if size == 0 or (last is not None and last.tree_size >= size and not force):
        return None
    if last is not None and last.tree_size == size:
        return last
    root = merkle.root_from_leaf_hashes(selectors.leaf_hashes(size)).hex()
    now = iso_time(timezone.now())
    body = canonical({"size": size, "root": root, "time": now})
    assert body == checkpoint_body(size, root, now)  # the verifier rebuilds it by hand
    signer = active_key()
    try:
        with transaction.atomic():
            return Checkpoint.objects.create(
                tree_size=size,
                root_hash=root,
                time=timezone.now(),
                key_id=signer.kid,
                signature=keystore.sign(signer.kid, body),
                body=body,
            )
    except IntegrityError:
        return Checkpoint.objects.get(tree_size=size)  # made concurrently: same size, same root


def checkpoint_record(checkpoint: Checkpoint) -> CheckpointRecord:
    """The verifier's view of a checkpoint; its time is the one inside the signed body."""
    import json

    body = bytes(checkpoint.body)
    try:
        signed_time = str(json.loads(body).get("time", ""))
    except ValueError:
        signed_time = ""
    return CheckpointRecord(
        checkpoint.tree_size,
        checkpoint.root_hash,
        signed_time,
        checkpoint.key_id,
        checkpoint.signature,
        body,
    )
