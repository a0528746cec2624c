"""The governance app's REST API, and the exception handler every app's API shares."""

from governance.api.exceptions import exception_handler

__all__ = ["exception_handler"]
