"""The one exception type for bad data: its message is one sentence naming the file and the fix."""


class DataError(ValueError):
    """Raised for missing, corrupt or ill-shaped data; the CLI prints the message and exits non-zero."""
