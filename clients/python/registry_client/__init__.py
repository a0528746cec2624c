"""Client for the governance registry's runtime (see ``registry_client.client``)."""

from registry_client.bucketing import BUCKETS, bucket, in_canary
from registry_client.client import (
    FORMAT,
    MissingVariables,
    NoContent,
    PinError,
    RegistryClient,
    Resolution,
    Snapshot,
    SnapshotError,
    load_snapshot,
    template_variables,
)
from registry_client.telemetry import Reporter

__all__ = [
    "BUCKETS",
    "FORMAT",
    "MissingVariables",
    "NoContent",
    "PinError",
    "RegistryClient",
    "Reporter",
    "Resolution",
    "Snapshot",
    "SnapshotError",
    "bucket",
    "in_canary",
    "load_snapshot",
    "template_variables",
]
