"""A mail server the tests can read from another process: each message is a file's entry.

``SlowFileBackend`` is Django's file-based backend that takes ``TEST_MAIL_DELAY`` seconds
to "connect" before the message is accepted (written in one write), like an SMTP server
that is slow to answer: a worker killed then has sent nothing.
"""

from __future__ import annotations

import email
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.mail.backends.filebased import EmailBackend

SEPARATOR = b"-" * 79


class SlowFileBackend(EmailBackend):
    def write_message(self, message: Any) -> None:
        time.sleep(float(os.environ.get("TEST_MAIL_DELAY", "0")))
        self.stream.write(message.message().as_bytes() + b"\n" + SEPARATOR + b"\n")


def delivered(folder: Path) -> Counter[tuple[str, str]]:
    """How many messages each (recipient, subject) received."""
    counts: Counter[tuple[str, str]] = Counter()
    if not folder.exists():
        return counts
    for path in folder.iterdir():
        for chunk in path.read_bytes().split(SEPARATOR + b"\n"):
            if not chunk.strip():
                continue
            parsed = email.message_from_bytes(chunk)
            subject = " ".join(str(parsed["Subject"]).split())  # unfold a long header
            counts[(str(parsed["To"]), subject)] += 1
    return counts
