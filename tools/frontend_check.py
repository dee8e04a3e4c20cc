"""Open UI-form workflows in a running ComfyUI's own frontend, in headless Chromium, and report
what the frontend makes of each node.

    python -m tools.frontend_check http://127.0.0.1:8188 example_workflows/*.json

For each workflow the page calls the frontend's app.loadGraphData (what opening a file does) and
returns, per node: its type, whether the frontend knows it (a missing node type becomes a blank
node with has_errors, drawn red), its background colour (VideoHelperSuite paints nodes it cannot
restore #C00), its widget values, and the API form the frontend would queue (app.graphToPrompt).
Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
separated by NUL bytes on file descriptors 3 and 4), so nothing beyond the standard library is needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

LOGGER = logging.getLogger("frontend_check")

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--remote-debugging-pipe",
]  # fmt: skip
# Ready: the app finished its setup (it then sets window.app), the server's node types are
# registered, and the startup workflow is restored (newer frontends do that after setup; loading
# a graph before then fails in them with "getCanvas: canvas is null" or shows every node missing).
APP_READY = (
    "(() => { const app = window.comfyAPI?.app?.app;"
    " if (!(app && window.app === app && app.graph && app.canvas && document.querySelector('canvas')"
    " && app.extensionManager && window.LiteGraph?.registered_node_types?.LoadImage)) return false;"
    " const workflows = app.extensionManager.workflow;"
    " return !workflows || !!workflows.activeWorkflow; })()"
)
# Loads one workflow (substituted for WORKFLOW) and reports the nodes as the frontend holds them.
LOAD_AND_REPORT = """(async () => {
  const app = window.comfyAPI.app.app;
  const workflow = WORKFLOW;
  await app.loadGraphData(structuredClone(workflow), true, true, null, {showMissingNodesDialog: false,
                                                                       showMissingModelsDialog: false});
  const nodes = app.graph.nodes.map((node) => ({
    id: node.id, type: node.type, comfyClass: node.comfyClass ?? null, hasErrors: !!node.has_errors,
    bgcolor: node.bgcolor ?? null,
    widgets: (node.widgets ?? []).map((widget) => [widget.name, widget.value ?? null]),
  }));
  const prompt = await app.graphToPrompt();
  return JSON.stringify({nodes, output: prompt.output});
})()"""


def find_chromium() -> str | None:
    """Debian's chromium (or a chromium-browser) on this machine, or None."""
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


class ChromiumError(RuntimeError):
    """Chromium failed, the page did not come up, or a script threw."""


class Chromium:
    """Headless Chromium with one page, driven over the DevTools protocol on a pipe."""

    def __init__(self, executable: str, log_path: Path):
        self.profile = tempfile.mkdtemp(prefix="gid-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        actions = [
            (os.POSIX_SPAWN_DUP2, to_browser_read, 3),
            (os.POSIX_SPAWN_DUP2, from_browser_write, 4),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        argv = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"]
        self.pid = os.posix_spawn(executable, argv, os.environ, file_actions=actions, setsid=True)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, timeout: float = 60.0, session: bool = True) -> dict:
        """Send one command and return its result (events that arrive meanwhile are dropped)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ChromiumError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise ChromiumError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ChromiumError("Chromium closed the DevTools pipe (it exited)")
            self._buffer += chunk
        text, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(text)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": url}, session=False)["targetId"]
        attached = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)
        self.session = attached["sessionId"]

    def evaluate(self, expression: str, timeout: float = 60.0):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, timeout=timeout)  # fmt: skip
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise ChromiumError(f"page script threw: {details.get('exception', {}).get('description') or details}")
        return result["result"].get("value")

    def close(self) -> None:
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(self.pid, signal.SIGTERM)
            for _ in range(50):
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    break
                time.sleep(0.1)
            else:
                os.killpg(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        shutil.rmtree(self.profile, ignore_errors=True)


def wait_for_app(browser: Chromium, timeout: float = 180.0) -> float:
    """Seconds until the ComfyUI app has its graph, canvas and node definitions."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if browser.evaluate(APP_READY):
            return time.monotonic() - began
        time.sleep(0.5)
    raise ChromiumError(f"the ComfyUI frontend did not come up within {timeout:.0f} s")


def load_workflow(browser: Chromium, workflow: dict) -> dict:
    """{"nodes": [{id, type, comfyClass, hasErrors, bgcolor, widgets}], "output": API form}."""
    return json.loads(browser.evaluate(LOAD_AND_REPORT.replace("WORKFLOW", json.dumps(workflow)), timeout=120))


def node_problems(report: dict, workflow: dict) -> list[str]:
    """Nodes the frontend shows as missing or red, or holds different from the file."""
    # Node ids are numbers in the file and in frontend 1.27, strings in newer frontends.
    saved = {str(node["id"]): node for node in workflow["nodes"]}
    held = {str(node["id"]) for node in report["nodes"]}
    problems = []
    if sorted(saved) != sorted(held):
        problems.append(f"the frontend holds nodes {sorted(held)}, the file {sorted(saved)}")
    for node in report["nodes"]:
        where = f"node {node['id']} ({saved.get(str(node['id']), {}).get('type')})"
        if node["hasErrors"] or node["type"] != saved.get(str(node["id"]), {}).get("type"):
            problems.append(f"{where} is missing in the frontend (shown as {node['type']!r}, has_errors)")
        if (node["bgcolor"] or "").upper() in ("#C00", "#CC0000", "#F00", "#FF0000"):
            problems.append(f"{where} is painted red ({node['bgcolor']})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="a running ComfyUI, e.g. http://127.0.0.1:8188")
    parser.add_argument("workflows", nargs="+", type=Path, help="UI-form workflow files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    chromium = find_chromium()
    if chromium is None:
        LOGGER.error("no chromium found (apt-get install chromium)")
        return 2
    browser = Chromium(chromium, Path(tempfile.gettempdir()) / "gid-frontend-check-chromium.log")
    failed = 0
    try:
        browser.open(args.url)
        LOGGER.info("frontend ready after %.1f s", wait_for_app(browser))
        for path in args.workflows:
            workflow = json.loads(path.read_text())
            problems = node_problems(load_workflow(browser, workflow), workflow)
            failed += bool(problems)
            LOGGER.info("%s: %s", path.name, "; ".join(problems) or "every node loads")
    finally:
        browser.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
