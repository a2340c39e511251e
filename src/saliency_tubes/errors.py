"""The one exception type users see: its message is printed as a single ``error: ...`` line."""


class SaliencyTubesError(Exception):
    """A user mistake (bad path, bad argument, unreadable file) with a one-line explanation."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (or its type's name), for one-line reports."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


class BadArgument(SaliencyTubesError, ValueError):
    """A bad argument value (an unknown name, a layer the model lacks): a one-line user error for the CLIs, and a
    ``ValueError`` for library callers."""
