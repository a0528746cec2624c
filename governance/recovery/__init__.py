"""Proof that the registry can come back: backups, recovery drills and rollback rehearsals.

``governance.recovery.models.RecoveryRun`` records every attempt (passed or failed) with an
event; the readiness dashboard, ``/metrics`` and the sweep's staleness alerts read it.
"""
