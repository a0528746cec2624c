"""Waivers: a failed review check (or one change-gate metric) excused until a date.

They are the reviews floor's: they exist to excuse its checks and gates. ``models`` (kept
under the ``governance`` label: same tables, admin URLs and log subjects), ``choices``,
``permissions`` (one predicate per action), ``services`` (grant, renew, countersign,
revoke, alerts), ``selectors`` (and the one list filter, ``waivers_matching``),
``filters``, ``forms``, ``views`` and ``urls`` (the pages), ``api`` and ``admin``.
"""
