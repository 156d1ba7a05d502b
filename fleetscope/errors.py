"""The one exception type for mistakes a user can fix: the CLI prints its message, no traceback."""


class FleetscopeError(Exception):
    """An error the user can act on; its message says what to change."""
