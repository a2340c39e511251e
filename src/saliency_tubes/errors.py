"""The one exception type users see: its message is printed as a single ``error: ...`` line."""


class SaliencyTubesError(Exception):
    """A user mistake (bad path, bad argument, unreadable file) with a one-line explanation."""
