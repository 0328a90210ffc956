"""Headless Chromium for HTML -> PDF and screenshots.

Chromium's own print path renders the HTML exactly as a browser shows it (CSS, tables, fonts,
`@page` rules), which pure-Python renderers only approximate; it is also what the emailed
dashboard needs for its screenshots, so one dependency covers both. Each call runs a fresh
headless process with a throwaway profile, so calls are independent and safe to run in parallel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
TIMEOUT_S = 120


class BrowserNotFound(RuntimeError):
    """No Chromium/Chrome on this machine."""


def find_chromium() -> str:
    """CHARGEOPS_CHROMIUM, else the first of CANDIDATES on PATH (or /usr/bin)."""
    explicit = os.environ.get("CHARGEOPS_CHROMIUM")
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return explicit
        raise BrowserNotFound(f"CHARGEOPS_CHROMIUM={explicit!r} is not an executable file")
    for name in CANDIDATES:
        path = shutil.which(name) or shutil.which(name, path="/usr/bin")
        if path:
            return path
    raise BrowserNotFound(
        "headless Chromium is needed for PDF and screenshots but was not found: install it "
        "(Debian/Ubuntu: `apt-get install chromium`) or set CHARGEOPS_CHROMIUM to its path"
    )


def _run(args: list[str], output: Path) -> Path:
    exe = find_chromium()
    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chargeops-chromium-") as profile:
        cmd = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--hide-scrollbars", "--run-all-compositor-stages-before-draw",
            f"--user-data-dir={profile}", *args,
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"chromium did not finish within {TIMEOUT_S} s") from e
    if not output.is_file() or output.stat().st_size == 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"chromium wrote no {output.name} (exit {done.returncode}): {tail}")
    return output


def _source_file(html: str | Path, tmp: Path) -> Path:
    if isinstance(html, Path):
        return html.resolve()
    page = tmp / "page.html"
    page.write_text(html, encoding="utf-8")
    return page


def html_to_pdf(html: str | Path, pdf: Path) -> Path:
    """Print an HTML document (a string, or a Path to a file) to `pdf`, without the browser's
    header and footer (the page's own `@page` CSS decides size and margins)."""
    pdf = Path(pdf)
    with tempfile.TemporaryDirectory(prefix="chargeops-html-") as tmp:
        src = _source_file(html, Path(tmp))
        tmp_pdf = Path(tmp) / "out.pdf"
        _run(["--no-pdf-header-footer", f"--print-to-pdf={tmp_pdf}", src.as_uri()], tmp_pdf)
        from reports.files import write_bytes

        return write_bytes(pdf, tmp_pdf.read_bytes())


def screenshot(html: str | Path, png: Path, width: int = 1200, height: int = 1600) -> Path:
    """A PNG of the page at `width` x `height` CSS pixels."""
    png = Path(png)
    with tempfile.TemporaryDirectory(prefix="chargeops-html-") as tmp:
        src = _source_file(html, Path(tmp))
        tmp_png = Path(tmp) / "out.png"
        _run([f"--window-size={width},{height}", f"--screenshot={tmp_png}", src.as_uri()], tmp_png)
        from reports.files import write_bytes

        return write_bytes(png, tmp_png.read_bytes())
