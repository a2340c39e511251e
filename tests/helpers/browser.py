"""Opening the report pages in the system's headless Chromium (Debian's ``chromium``), driven by playwright.

Playwright never downloads a browser here: it launches the ``chromium`` on PATH. Without it (or without
playwright) the browser tests skip with a one-line reason; CI installs it (``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from .common import REPO

# screenshots the tests save: TEST_ARTIFACTS, else test-artifacts/ in the repository (ignored by git)
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "test-artifacts"))


def chromium_or_skip() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium on PATH (apt-get install -y chromium); the browser tests need it")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    return path


@dataclass
class PageLog:
    """What happened while the page was open."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)  # media fetches Chromium cancelled itself (see on_failed)
    dialogs: list[str] = field(default_factory=list)

    def outside(self, folder: Path) -> list[str]:
        """Requests that leave ``folder``: anything not ``file://`` (or ``data:``) below it."""
        root = folder.resolve()
        bad = []
        for url in self.requests:
            parsed = urlparse(url)
            if parsed.scheme == "data":
                continue
            if parsed.scheme != "file" or not Path(unquote(parsed.path)).resolve().is_relative_to(root):
                bad.append(url)
        return bad


MEDIA = (".mp4", ".webm")


def _on_failed(log: PageLog, url: str, failure: str | None) -> None:
    """A failed request, except a video fetch that Chromium cancelled itself (``net::ERR_ABORTED``): it aborts the
    first full fetch of a media file when it switches to range requests, and a pending one when a lazy video is
    loaded. A file that is missing or unreadable fails with another error (``ERR_FILE_NOT_FOUND``) and counts; that
    the videos really play is checked separately (readyState, duration, currentTime)."""
    if "ERR_ABORTED" in (failure or "") and urlparse(url).path.lower().endswith(MEDIA):
        log.aborted.append(url)
    else:
        log.failed.append(f"{url}: {failure}")


@contextmanager
def open_page(path: Path, width: int = 1400, height: int = 900):
    """``(page, log)`` for ``path`` opened from ``file://`` in headless Chromium."""
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    log = PageLog()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: log.page_errors.append(str(e)))
            page.on("request", lambda r: log.requests.append(r.url))
            page.on("requestfailed", lambda r: _on_failed(log, r.url, r.failure))
            page.on("dialog", lambda d: (log.dialogs.append(d.message), d.dismiss()))
            page.goto(path.resolve().as_uri(), wait_until="load")
            yield page, log
        finally:
            browser.close()


def load_ms(page) -> float:
    """From navigation start to the end of the load event (``performance.timing``), in milliseconds."""
    return page.evaluate("performance.timing.loadEventEnd - performance.timing.navigationStart")


def check_video(page, handle, wait_ms: int = 800) -> dict:
    """Load one ``<video>`` (the pages load lazily), wait for ``readyState >= 2``, play it for ``wait_ms`` and
    return ``{readyState, duration, t0, t1, src}``; ``t1 > t0`` when it played."""
    handle.scroll_into_view_if_needed()
    # as the page's script does for what is on screen: one load() per video (a second would abort the first request)
    handle.evaluate("v => { if (v.preload === 'none') { v.preload = 'auto'; v.load(); } }")
    page.wait_for_function("v => v.readyState >= 2 || v.error", arg=handle, timeout=15000)
    state = handle.evaluate(
        "v => ({readyState: v.readyState, duration: v.duration, t0: v.currentTime, src: v.currentSrc,"
        " error: v.error && v.error.code})"
    )
    handle.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_timeout(wait_ms)
    state["t1"] = handle.evaluate("v => v.currentTime")
    handle.evaluate("v => v.pause()")
    return state


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
