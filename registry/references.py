"""The one grammar for artifact and version references, and the order of semantic versions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

import semver

MAX_REFERENCE_LENGTH = 300
MAX_SLUG_LENGTH = 100
MAX_TENANT_LENGTH = 63
MIN_HASH_LENGTH = 8
FULL_HASH_LENGTH = 64

FIELDS = ("reference", "class", "tenant", "slug", "version", "sha256")

_SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?")
_TENANT_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_HASH_RE = re.compile(r"[0-9a-f]{8,64}")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_HEX_CHARS = frozenset("0123456789abcdef")
# Only the three numeric parts, so a malformed pre-release gets its own, more useful message.
_VERSION_SHAPE_RE = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)(?:[-+].*)?", re.DOTALL)
_LABELS = {
    "reference": "reference",
    "class": "class slug",
    "tenant": "tenant",
    "slug": "slug",
    "version": "version",
    "sha256": "sha256",
}
_FORMS = "'slug', 'slug@version', 'class/tenant/slug' or 'class/tenant/slug/version'"

VersionKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


class BrokenReference(ValueError):
    """A reference that does not follow the grammar; ``field`` names the part at fault."""

    field: str

    def __init__(self, message: str, field: str = "reference") -> None:
        super().__init__(message)
        self.field = field

    # Celery and multiprocessing pickle exceptions; the default reduce would drop ``field``.
    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.field))


def _show(value: str) -> str:
    # repr() makes control characters and stray whitespace visible; long input is cut so the
    # message stays readable in a form error.
    if len(value) > 70:
        value = value[:67] + "..."
    return repr(value)


def _describe_char(char: str) -> str:
    name = unicodedata.name(char, "unnamed character")
    return f"{char!r} (U+{ord(char):04X} {name})"


def _check_name(value: object, field: str, pattern: re.Pattern[str], max_length: int) -> str:
    label = _LABELS[field]
    if not isinstance(value, str):
        raise BrokenReference(f"{label} must be text, not {type(value).__name__}", field)
    if value == "":
        raise BrokenReference(f"{label} is empty", field)
    for char in value:
        if not char.isascii():
            # Look-alikes (a Cyrillic a, a fullwidth @) would otherwise pass as the real thing.
            raise BrokenReference(
                f"{label} {_show(value)} contains the non-ASCII character {_describe_char(char)};"
                " only lowercase ASCII letters, digits and hyphens are allowed",
                field,
            )
    if len(value) > max_length:
        raise BrokenReference(
            f"{label} {_show(value)} is {len(value)} characters long;"
            f" at most {max_length} are allowed",
            field,
        )
    if any(char.isupper() for char in value):
        raise BrokenReference(f"{label} {_show(value)} must be lowercase", field)
    for char in value:
        if char not in _NAME_CHARS:
            raise BrokenReference(
                f"{label} {_show(value)} contains {char!r};"
                " only lowercase letters, digits and hyphens are allowed",
                field,
            )
    if not pattern.fullmatch(value):
        raise BrokenReference(
            f"{label} {_show(value)} must start and end with a letter or digit", field
        )
    return value


def _check_class(value: object) -> str:
    return _check_name(value, "class", _SLUG_RE, MAX_SLUG_LENGTH)


def _check_tenant(value: object) -> str:
    return _check_name(value, "tenant", _TENANT_RE, MAX_TENANT_LENGTH)


def _check_slug(value: object) -> str:
    return _check_name(value, "slug", _SLUG_RE, MAX_SLUG_LENGTH)


def parse_version(text: str) -> semver.Version:
    """Validate a strict semantic version (no leading "v") and return it parsed."""
    if not isinstance(text, str):
        raise BrokenReference(f"version must be text, not {type(text).__name__}", "version")
    if text == "":
        raise BrokenReference("version is empty", "version")
    for char in text:
        if not char.isascii():
            raise BrokenReference(
                f"version {_show(text)} contains the non-ASCII character {_describe_char(char)}",
                "version",
            )
    if text[0] in "vV" and _VERSION_SHAPE_RE.fullmatch(text[1:]):
        raise BrokenReference(
            f"version {_show(text)} must not start with {text[0]!r}; write {text[1:]!r}",
            "version",
        )
    shape = _VERSION_SHAPE_RE.fullmatch(text)
    if shape is None:
        raise BrokenReference(
            f"version {_show(text)} is not a semantic version (MAJOR.MINOR.PATCH)", "version"
        )
    for part, number in zip(("MAJOR", "MINOR", "PATCH"), shape.groups(), strict=True):
        if len(number) > 1 and number.startswith("0"):
            raise BrokenReference(
                f"version {_show(text)} has a leading zero in {part};"
                " numbers in a semantic version have none",
                "version",
            )
    try:
        return semver.Version.parse(text)
    except ValueError:
        raise BrokenReference(
            f"version {_show(text)} has a malformed pre-release or build part (after '-' or '+'"
            " come dot-separated identifiers of letters, digits and hyphens, and numeric"
            " pre-release identifiers have no leading zeros)",
            "version",
        ) from None


def _check_hash(value: object) -> str:
    if not isinstance(value, str):
        raise BrokenReference(f"sha256 must be text, not {type(value).__name__}", "sha256")
    if value == "":
        raise BrokenReference("sha256 is empty after '#'", "sha256")
    for char in value:
        if not char.isascii():
            raise BrokenReference(
                f"sha256 {_show(value)} contains the non-ASCII character {_describe_char(char)}",
                "sha256",
            )
    if len(value) > FULL_HASH_LENGTH:
        raise BrokenReference(
            f"sha256 {_show(value)} is {len(value)} characters long;"
            f" a SHA-256 digest has {FULL_HASH_LENGTH} hex characters",
            "sha256",
        )
    if any(char in "ABCDEF" for char in value) and all(
        char.lower() in _HEX_CHARS for char in value
    ):
        raise BrokenReference(f"sha256 {_show(value)} must be lowercase hexadecimal", "sha256")
    for char in value:
        if char not in _HEX_CHARS:
            raise BrokenReference(
                f"sha256 {_show(value)} contains {char!r};"
                " only hexadecimal digits 0-9 and a-f are allowed",
                "sha256",
            )
    if len(value) < MIN_HASH_LENGTH:
        raise BrokenReference(
            f"sha256 {_show(value)} is too short: a hash prefix needs at least"
            f" {MIN_HASH_LENGTH} hex characters",
            "sha256",
        )
    assert _HASH_RE.fullmatch(value)
    return value


@dataclass(frozen=True)
class Reference:
    """A parsed reference; every instance satisfies the grammar, however it was built."""

    slug: str
    class_slug: str | None = None
    tenant: str | None = None
    version: str | None = None
    sha256: str | None = None

    def __post_init__(self) -> None:
        # Left to right, so the error names the first part a reader would look at.
        if self.class_slug is not None:
            _check_class(self.class_slug)
        if self.tenant is not None:
            _check_tenant(self.tenant)
        _check_slug(self.slug)
        if self.version is not None:
            parse_version(self.version)
        if self.sha256 is not None:
            if self.version is None:
                raise BrokenReference(
                    "a '#sha256' pin needs a version before it, e.g. 'slug:1.0.0#<sha256>'",
                    "version",
                )
            _check_hash(self.sha256)

    @property
    def is_fully_pinned(self) -> bool:
        """A version and a full 64-character hash: what pinning callers require."""
        return (
            self.version is not None
            and self.sha256 is not None
            and len(self.sha256) == FULL_HASH_LENGTH
        )

    @property
    def names_version(self) -> bool:
        return self.version is not None

    def path(self) -> str:
        """``class/tenant/slug[/version]``; needs the class and tenant to be known."""
        if self.class_slug is None:
            raise BrokenReference(
                f"class slug of {self.slug!r} is unknown, so it has no full path", "class"
            )
        if self.tenant is None:
            raise BrokenReference(
                f"tenant of {self.slug!r} is unknown, so it has no full path", "tenant"
            )
        base = f"{self.class_slug}/{self.tenant}/{self.slug}"
        return base if self.version is None else f"{base}/{self.version}"

    def pinned(self) -> str:
        """``slug:version#sha256``, the pinned form used within a tenant."""
        if self.version is None:
            raise BrokenReference(
                f"{self.slug!r} names no version, so it cannot be pinned", "version"
            )
        if self.sha256 is None:
            raise BrokenReference(
                f"{self.slug}@{self.version} carries no sha256, so it cannot be pinned", "sha256"
            )
        return f"{self.slug}:{self.version}#{self.sha256}"

    def with_defaults(
        self, *, class_slug: str | None = None, tenant: str | None = None
    ) -> Reference:
        """Fill in the class and tenant where missing; parts already given are kept."""
        return replace(
            self,
            class_slug=self.class_slug if self.class_slug is not None else class_slug,
            tenant=self.tenant if self.tenant is not None else tenant,
        )

    def __str__(self) -> str:
        if self.class_slug is not None and self.tenant is not None:
            text = self.path()
            return text if self.sha256 is None else f"{text}#{self.sha256}"
        if self.version is None:
            return self.slug
        if self.sha256 is None:
            return f"{self.slug}@{self.version}"
        return self.pinned()


def _clean_text(text: object) -> str:
    """The reference text, stripped: text, not empty, not too long."""
    if not isinstance(text, str):
        raise BrokenReference(f"reference must be text, not {type(text).__name__}", "reference")
    text = text.strip()
    if text == "":
        raise BrokenReference("reference is empty", "reference")
    if len(text) > MAX_REFERENCE_LENGTH:
        raise BrokenReference(
            f"reference is {len(text)} characters long; at most {MAX_REFERENCE_LENGTH} are allowed",
            "reference",
        )
    return text


def _path_segments(text: str, body: str) -> list[str]:
    """The ``/``-separated parts of the body: one, three or four."""
    if body.startswith("/") or body.endswith("/"):
        raise BrokenReference(
            f"reference {_show(text)} must not start or end with '/'; expected {_FORMS}",
            "reference",
        )
    segments = body.split("/")
    if len(segments) not in (1, 3, 4):
        raise BrokenReference(
            f"reference {_show(text)} has {len(segments)} path segments; expected {_FORMS}",
            "reference",
        )
    return segments


def _split(segments: list[str]) -> tuple[str | None, str | None, str, str | None, str]:
    """(class, tenant, slug, version, the separator before the version) as written."""
    if len(segments) == 4:
        cls, owner, slug, version = segments
        return cls, owner, slug, version, "/"
    explicit_class: str | None = None
    explicit_tenant: str | None = None
    if len(segments) == 3:
        explicit_class, explicit_tenant, last = segments
    else:
        (last,) = segments
    positions = [pos for pos in (last.find("@"), last.find(":")) if pos >= 0]
    if not positions:
        return explicit_class, explicit_tenant, last, None, ""
    cut = min(positions)
    slug, separator, version = last[:cut], last[cut], last[cut + 1 :]
    if version == "":
        raise BrokenReference(f"version is empty after {separator!r}", "version")
    return explicit_class, explicit_tenant, slug, version, separator


def _check_pin(text: str, version: str | None, separator: str, has_hash: bool) -> None:
    """A ``#sha256`` pin needs a version; the ``:`` form needs the pin."""
    if has_hash and version is None:
        raise BrokenReference(
            f"reference {_show(text)} has a '#sha256' pin but no version before it;"
            " write 'slug:version#sha256'",
            "version",
        )
    if version is not None:
        parse_version(version)
    if separator == ":" and not has_hash:
        # ':' is the pinned form; without the hash it is probably a truncated paste.
        raise BrokenReference(
            f"reference {_show(text)} uses the pinned form 'slug:version#sha256' but has no"
            " '#sha256'; write 'slug@version' for an unpinned version",
            "sha256",
        )


def parse_reference(
    text: str, *, tenant: str | None = None, class_slug: str | None = None
) -> Reference:
    """Parse any accepted reference form; ``tenant``/``class_slug`` fill in what the text omits.

    Accepted: ``slug``, ``slug@version``, ``slug:version#sha256``, ``slug@version#sha256``,
    ``class/tenant/slug``, ``class/tenant/slug@version`` and ``class/tenant/slug/version``,
    each with versions optionally followed by ``#sha256`` (8-64 lowercase hex).
    """
    text = _clean_text(text)
    if tenant is not None:
        _check_tenant(tenant)
    if class_slug is not None:
        _check_class(class_slug)

    body, has_hash, sha256 = text.partition("#")
    segments = _path_segments(text, body)
    explicit_class, explicit_tenant, slug, version, separator = _split(segments)
    if explicit_class is not None:
        _check_class(explicit_class)
    if explicit_tenant is not None:
        _check_tenant(explicit_tenant)
    _check_slug(slug)
    _check_pin(text, version, separator, bool(has_hash))
    return Reference(
        slug=slug,
        class_slug=explicit_class if explicit_class is not None else class_slug,
        tenant=explicit_tenant if explicit_tenant is not None else tenant,
        version=version,
        sha256=_check_hash(sha256) if has_hash else None,
    )


def version_key(version: str) -> VersionKey:
    """A sort key that orders versions by semantic-version precedence (build metadata ignored)."""
    parsed = parse_version(version)
    if parsed.prerelease is None:
        # A release sorts after every pre-release of the same MAJOR.MINOR.PATCH.
        return (parsed.major, parsed.minor, parsed.patch, 1, ())
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in parsed.prerelease.split(".")
    )
    return (parsed.major, parsed.minor, parsed.patch, 0, identifiers)
