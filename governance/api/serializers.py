"""API shapes for events, checkpoints, keys, proofs and verification runs (waivers: ``reviews.waivers.api``)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from governance.kernel.events.models import Checkpoint, Event, SigningKey, VerificationRun


class EventSerializer(serializers.ModelSerializer[Event]):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)  # type: ignore[var-annotated]
    actor = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = [
            "seq",
            "time",
            "kind",
            "tenant",
            "actor",
            "subject",
            "payload",
            "prev_hash",
            "entry_hash",
            "key_id",
            "signature",
            "url",
        ]

    def get_actor(self, obj: Event) -> dict[str, str | None]:
        return {
            "type": "user" if obj.actor_id else "system",
            "username": obj.actor_name or None,
            "via": obj.via,
        }

    def get_subject(self, obj: Event) -> dict[str, str] | None:
        if not obj.subject_type:
            return None
        return {"type": obj.subject_type, "id": obj.subject_id, "label": obj.subject_label}

    def get_url(self, obj: Event) -> str:
        return f"/api/v1/events/{obj.seq}/"


class EventDetailSerializer(EventSerializer):
    canonical_header = serializers.SerializerMethodField(
        help_text="The RFC 8785 bytes that were hashed (UTF-8)."
    )
    canonical_payload = serializers.SerializerMethodField()

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "canonical_header", "canonical_payload"]

    def get_canonical_header(self, obj: Event) -> str:
        return bytes(obj.header).decode()

    def get_canonical_payload(self, obj: Event) -> str:
        return bytes(obj.payload_bytes).decode()


class CheckpointSerializer(serializers.Serializer[Checkpoint]):
    """The same JSON an auditor keeps and hands to `python -m governance.verify --checkpoint`."""

    size = serializers.IntegerField()
    time = serializers.CharField(help_text="The time inside the signed body.")
    kid = serializers.CharField()
    signature = serializers.CharField()
    body = serializers.CharField(help_text="The signed RFC 8785 bytes {root, size, time}.")

    def to_representation(self, instance: Checkpoint) -> dict[str, Any]:
        from governance.kernel.events.services import checkpoint_record

        return checkpoint_record(instance).as_json()


# "root" would shadow Serializer.root as a class attribute, so it is declared here.
CheckpointSerializer._declared_fields["root"] = serializers.CharField(help_text="Merkle root, hex")


class SigningKeySerializer(serializers.ModelSerializer[SigningKey]):
    class Meta:
        model = SigningKey
        fields = [
            "kid",
            "algorithm",
            "public_key",
            "status",
            "created_at",
            "retired_at",
            "revoked_at",
        ]


class InclusionProofSerializer(serializers.Serializer[Any]):
    seq = serializers.IntegerField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    leaf_hash = serializers.CharField()
    root_hash = serializers.CharField()
    audit_path = serializers.ListField(child=serializers.CharField())


class ConsistencyProofSerializer(serializers.Serializer[Any]):
    first_size = serializers.IntegerField()
    second_size = serializers.IntegerField()
    first_root = serializers.CharField()
    second_root = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField())


class VerificationRunSerializer(serializers.ModelSerializer[VerificationRun]):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)  # type: ignore[var-annotated]

    class Meta:
        model = VerificationRun
        fields = [
            "id",
            "status",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "total",
            "checked",
            "percent",
            "first_bad_seq",
            "reason",
        ]
