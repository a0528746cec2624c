"""The kernel: what every floor uses (the event log, errors, inputs, notifications,
the CLI base command, the read-only admin, form and view helpers).

It sits on the ground floor next to ``accounts`` and imports nothing above them.
Kept free of imports so that the offline verifier runs without Django.
"""
