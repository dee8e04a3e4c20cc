"""A real ComfyUI server for integration tests, booted from the vendored sources in ../shared/vendor.

The GPL sources are unpacked into a cache directory (never into this repository) and reused while
the tarball is unchanged. Each server gets a fresh base directory whose custom_nodes/ holds
symlinks to this repository (as `ComfyUI-GID`) and to VideoHelperSuite, so the unpacked ComfyUI
tree itself is never written to. The server runs in the interpreter that runs the tests, so
ComfyUI's requirements must be installed there (`bash .ci/run` does that).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDOR_DIR = REPO_ROOT.parent / "shared" / "vendor"
COMFYUI_TARBALL = VENDOR_DIR / "ComfyUI-0.3.64.tar.gz"
VHS_TARBALL = VENDOR_DIR / "ComfyUI-VideoHelperSuite-1.7.9.tar.gz"
PACK_FOLDER_NAME = "ComfyUI-GID"
VHS_FOLDER_NAME = "ComfyUI-VideoHelperSuite"

# torch is installed on its own (CPU build); ComfyUI runs without torchaudio (its audio nodes
# then fail to load). torchvision stays required: ComfyUI imports it at start-up (see .ci/run).
NOT_REQUIRED = {"torch", "torchaudio"}
# Imported by ComfyUI's frontend manager but missing from its requirements.txt.
EXTRA_REQUIRED = ["requests"]


def cache_dir() -> Path:
    """Root of this project's cache (same place .ci/run keeps its virtual environment)."""
    if os.environ.get("GID_CACHE_DIR"):
        return Path(os.environ["GID_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "comfyui-gid"


def unpack(tarball: Path) -> Path:
    """Unpack `tarball` under cache_dir()/vendor once per content hash; return its top folder.

    Safe against concurrent test runs: each unpacks into a private folder and renames it into
    place; the loser of a race discards its copy.
    """
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()[:12]
    stem = tarball.name.removesuffix(".tar.gz")
    target = cache_dir() / "vendor" / f"{stem}-{digest}"
    marker = target / ".unpacked"
    if not marker.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=target.parent))
        with tarfile.open(tarball) as archive:
            archive.extractall(staging, filter="data")
        (staging / ".unpacked").write_text(tarball.name + "\n")
        if target.exists() and not marker.exists():  # left over from an interrupted unpack
            shutil.rmtree(target, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not marker.exists():
                raise
    tops = [p for p in target.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise RuntimeError(f"{tarball.name}: expected one top-level folder, found {tops}")
    return tops[0]


def requirement_names(requirements_txt: Path) -> list[str]:
    """Distribution names listed in a pip requirements file (comments and options dropped)."""
    names = []
    for line in requirements_txt.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        names.append(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0])
    return names


def missing_distributions(comfyui_dir: Path, vhs_dir: Path) -> list[str]:
    """Requirements of ComfyUI and VideoHelperSuite not installed in the running interpreter."""
    wanted = requirement_names(comfyui_dir / "requirements.txt")
    wanted += requirement_names(vhs_dir / "requirements.txt") + EXTRA_REQUIRED
    missing = []
    for name in wanted:
        if name.lower() in NOT_REQUIRED:
            continue
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ComfyUIError(RuntimeError):
    """The server failed to start, rejected a prompt, or a prompt failed; carries the log tail."""


@dataclass
class PromptResult:
    prompt_id: str
    history: dict  # the /history/<id> entry: {"prompt": ..., "outputs": ..., "status": ...}
    seconds: float

    def saved_images(self, node_id: str) -> list[dict]:
        """The `images` entries that output node `node_id` reported (filename, subfolder, type)."""
        return self.history["outputs"].get(node_id, {}).get("images", [])


class ComfyUIServer:
    """One `python main.py --cpu` process with its own base/input/output/temp/user folders."""

    def __init__(self, comfyui_dir: Path, custom_nodes: dict[str, Path], work_dir: Path):
        self.comfyui_dir = comfyui_dir
        self.work_dir = work_dir
        self.input_dir = work_dir / "input"
        self.output_dir = work_dir / "output"
        self.temp_dir = work_dir / "temp"
        self.user_dir = work_dir / "user"
        self.log_path = work_dir / "comfyui.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.startup_seconds = float("nan")
        self.startup_log = ""  # the log as it stood when the server first answered
        nodes_dir = work_dir / "custom_nodes"
        for folder in (nodes_dir, self.input_dir, self.output_dir, self.temp_dir, self.user_dir):
            folder.mkdir(parents=True, exist_ok=True)
        for name, source in custom_nodes.items():
            (nodes_dir / name).symlink_to(source, target_is_directory=True)

    def command(self) -> list[str]:
        return [
            sys.executable, "main.py", "--cpu",
            "--listen", "127.0.0.1", "--port", str(self.port),
            "--base-directory", str(self.work_dir),
            "--input-directory", str(self.input_dir),
            "--output-directory", str(self.output_dir),
            "--temp-directory", str(self.temp_dir),
            "--user-directory", str(self.user_dir),
            "--database-url", "sqlite:///:memory:",
            "--disable-auto-launch",
        ]  # fmt: skip

    def start(self, timeout: float = 240.0) -> None:
        """Launch the server and wait until it answers HTTP; raise ComfyUIError with the log tail."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)
        began = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=self.comfyui_dir, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise ComfyUIError(f"ComfyUI exited with code {self.process.returncode} while starting.\n"
                                   + self.log_tail())
            try:
                self.get_json("/system_stats", timeout=5)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
                continue
            self.startup_seconds = time.monotonic() - began
            self.startup_log = self.log_text()
            logger.info("ComfyUI up at %s after %.1f s", self.url, self.startup_seconds)
            return
        self.stop()
        raise ComfyUIError(f"ComfyUI did not answer on {self.url} within {timeout:.0f} s.\n" + self.log_tail())

    def stop(self) -> None:
        """Terminate the server's whole process group (SIGTERM, then SIGKILL after 15 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}\n--- end of log ---"

    # HTTP ---------------------------------------------------------------------------------
    def get_json(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def get_bytes(self, path: str, timeout: float = 30) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return response.read()

    def post_json(self, path: str, payload: dict, timeout: float = 30) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                return error.code, json.loads(body)
            except json.JSONDecodeError:
                return error.code, {"raw": body.decode(errors="replace")}

    def run_prompt(self, graph: dict, timeout: float = 300.0) -> PromptResult:
        """POST an API-format graph to /prompt and poll /history until it finishes.

        Raises ComfyUIError with the server's validation errors or execution messages and the
        log tail when the prompt is rejected, fails, or runs past `timeout` seconds.
        """
        began = time.monotonic()
        status, reply = self.post_json("/prompt", {"prompt": graph, "client_id": uuid.uuid4().hex})
        if status != 200 or "prompt_id" not in reply:
            raise ComfyUIError(f"/prompt rejected the graph (HTTP {status}):\n"
                               f"{json.dumps(reply, indent=1)[:4000]}\n{self.log_tail(30)}")
        prompt_id = reply["prompt_id"]
        while time.monotonic() - began < timeout:
            if self.process is not None and self.process.poll() is not None:
                raise ComfyUIError(f"ComfyUI died while running prompt {prompt_id}.\n" + self.log_tail())
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                state = entry["status"]
                if state.get("status_str") != "success":
                    raise ComfyUIError(f"prompt {prompt_id} failed: {json.dumps(state.get('messages'), indent=1)[:6000]}"
                                       f"\n{self.log_tail(40)}")
                return PromptResult(prompt_id, entry, time.monotonic() - began)
            time.sleep(0.5)
        self.post_json("/interrupt", {})
        raise ComfyUIError(f"prompt {prompt_id} did not finish within {timeout:.0f} s.\n" + self.log_tail())


def with_default_inputs(object_info: dict, class_type: str, inputs: dict) -> dict:
    """Complete a node's API-format inputs with the defaults ComfyUI declares for its widgets.

    Only required inputs are filled; a required socket input (no default) that is not given
    raises KeyError naming it, so a graph never silently misses a connection.
    """
    spec = object_info[class_type]["input"].get("required", {})
    completed = dict(inputs)
    for name, declaration in spec.items():
        if name in completed:
            continue
        kind = declaration[0]
        options = declaration[1] if len(declaration) > 1 and isinstance(declaration[1], dict) else {}
        if isinstance(kind, list):
            completed[name] = options.get("default", kind[0] if kind else None)
        elif "default" in options:
            completed[name] = options["default"]
        elif kind == "COMBO" and options.get("options"):  # combo declared the V3 way
            completed[name] = options["options"][0]
        elif kind in ("INT", "FLOAT"):
            completed[name] = options.get("min", 0)
        elif kind == "BOOLEAN":
            completed[name] = False
        elif kind == "STRING":
            completed[name] = ""
        else:
            raise KeyError(f"{class_type}: required input {name!r} of type {kind} must be connected")
    return completed


TRACEBACK_ALLOWED = (
    # Our CPU environment has no torchvision/torchaudio: these core ComfyUI extras then fail to
    # import, which does not affect any node this pack or its tests use.
    re.compile(r"No module named '(torchvision|torchaudio)'"),
)


def log_problems(log_text: str, pack_markers: tuple[str, ...]) -> list[str]:
    """Lines and tracebacks in a ComfyUI log that point at a problem.

    Reported: import failures and warnings on lines that contain any of `pack_markers` (matched
    case-sensitively: e.g. our custom_nodes path and the repository path), and every traceback
    except the known, unrelated ones in TRACEBACK_ALLOWED.
    """
    problems = []
    lines = log_text.splitlines()
    for number, line in enumerate(lines):
        mentions_pack = any(marker in line for marker in pack_markers)
        if mentions_pack and re.search(r"import failed|cannot import|error|warn|skip|unable", line.lower()):
            problems.append(f"line {number + 1}: {line}")
        if line.startswith("Traceback (most recent call last)"):
            block = [line]
            for following in lines[number + 1 :]:
                block.append(following)
                if following and not following.startswith((" ", "\t", "Traceback", "During handling", "The above")):
                    break
            text = "\n".join(block)
            if not any(pattern.search(text) for pattern in TRACEBACK_ALLOWED):
                problems.append(f"traceback at line {number + 1}:\n{text}")
    return problems
