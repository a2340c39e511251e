"""File-system checks done before long work starts, so a bad path fails at once with one line."""

from __future__ import annotations

from pathlib import Path

from .errors import SaliencyTubesError


def ensure_writable_dir(folder: str | Path, what: str) -> Path:
    """Create ``folder`` if needed and check a file can be written there; ``what`` names it in the error."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SaliencyTubesError(f"cannot write {what} to {folder}: {exc.strerror or exc}") from None
    return folder
