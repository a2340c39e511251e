"""Which video decoders this machine has. decord has wheels for x86-64 only, so tests that force it skip elsewhere;
``backend="decord"`` without decord would quietly read with PyAV and test nothing new."""

import pytest

from saliency_tubes.data import video

HAVE_DECORD = video.decord is not None  # what the reader itself uses: None when the import failed

needs_decord = pytest.mark.skipif(not HAVE_DECORD, reason="decord is not installed (it has wheels for x86-64 only)")


def backends(*names: str) -> list:
    """Backend names for ``parametrize``, decord's marked ``needs_decord``."""
    return [pytest.param(n, marks=needs_decord) if n == "decord" else n for n in names]
