"""The built-in classes are named once: ``ArtifactClass`` and ``BUILTIN_CLASSES`` agree."""

from __future__ import annotations

from registry.choices import BUILTIN_CLASSES, ArtifactClass, ContentKind


def test_every_builtin_class_is_a_member_of_artifact_class_in_its_order():
    assert [row[0] for row in BUILTIN_CLASSES] == list(ArtifactClass)
    assert [row[0] for row in BUILTIN_CLASSES] == ArtifactClass.values


def test_each_builtin_class_is_named_by_its_label_and_holds_a_known_content_kind():
    for slug, name, kind, pointer, _description in BUILTIN_CLASSES:
        assert name == ArtifactClass(slug).label
        assert kind in ContentKind.values
        assert pointer in ("", "/interface")
