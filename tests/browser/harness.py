"""Serve the repository to headless Chromium and read back what a check page reports.

The server maps /view?filename=..&subfolder=..&type=temp to a temp folder exactly as ComfyUI's
/view route does (so pages fetch what nodes/interactive.py wrote), serves web/ at
/extensions/ComfyUI-GID/ and the stand-ins of tests/browser/comfy_stub/ at /scripts/ (where
ComfyUI serves its frontend modules, so our extension's relative imports resolve as in
ComfyUI), every other path from the repository root, and accepts POST /result (the page's report, also written into its #result). Used by tests/test_browser_preview.py and benchmarks/live_preview.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlparse

LOGGER = logging.getLogger(__name__)
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def find_chromium() -> str | None:
    """Path of Debian's chromium (or a chromium-browser) on this machine, or None."""
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


ROUTES = {"/extensions/ComfyUI-GID/": "/web/", "/scripts/": "/tests/browser/comfy_stub/"}


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, temp_dir: Path, reports: list, received: threading.Event, **kwargs):
        self.temp_dir, self.reports, self.received = temp_dir, reports, received
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        if url.path != "/view":
            for prefix, target in ROUTES.items():
                if url.path.startswith(prefix):
                    self.path = target + self.path[len(prefix):]
            super().do_GET()
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        name, subfolder = os.path.basename(query.get("filename", "")), query.get("subfolder", "")
        path = (self.temp_dir / subfolder / name).resolve()
        if query.get("type") != "temp" or self.temp_dir.resolve() not in path.parents or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "image/png" if name.endswith(".png") else "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        if urlparse(self.path).path == "/result":
            self.reports.append(body)
            self.received.set()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        LOGGER.debug("http: " + format, *args)


@contextlib.contextmanager
def serve(root: Path, temp_dir: Path) -> Iterator[tuple[str, list, threading.Event]]:
    """(base URL on 127.0.0.1 with a free port, list of POSTed reports, event set on a report)."""
    reports: list[str] = []
    received = threading.Event()
    handler = partial(_Handler, directory=str(root), temp_dir=Path(temp_dir), reports=reports, received=received)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", reports, received
    finally:
        server.shutdown()
        server.server_close()


def _stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM Chromium's process group, give the leader 10 s, then SIGKILL whatever of it is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    with contextlib.suppress(ProcessLookupError):  # the leader's orphaned children, or a hung leader
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _remove_profile(profile: str, attempts: int = 20) -> None:
    """Remove the profile folder, retrying while exiting children still flush files into it."""
    for _ in range(attempts):
        shutil.rmtree(profile, ignore_errors=True)
        if not os.path.exists(profile):
            return
        time.sleep(0.1)
    LOGGER.warning("could not remove Chromium's profile %s; it is left in the temp folder", profile)


def _parse_report(text: str) -> tuple[str, str]:
    status, _, payload = text.strip().partition(" ")
    return status, payload


def run_page(chromium: str, url: str, received: threading.Event, reports: list,
             timeout_s: float = 120) -> tuple[str, str]:
    """Load url in headless Chromium and wait for the page to POST /result; returns (status word, JSON).

    Real time, not --virtual-time-budget with --dump-dom: virtual time fast-forwards while the page
    waits on work it does not track (image decoding), so the DOM could be dumped before the check
    ran, and requestAnimationFrame hardly runs under it.
    """
    profile = tempfile.mkdtemp(prefix="gid-chromium-")
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url]
    # Its own session, so the renderer and utility children are stopped with it: a child left
    # running keeps writing into the profile while it is being removed.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        if not received.wait(timeout_s):
            raise RuntimeError(f"the page did not report within {timeout_s} s")
    finally:
        _stop_process_group(process)
        _remove_profile(profile)
    return _parse_report(reports[-1])
