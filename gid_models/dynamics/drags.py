"""Drag JSON (what the GID.DragPoints widget stores) -> Drag objects in pixels.

The JSON string, version 1 (web/js/lib/drag_model.js writes and checks the same format):

    {"version": 1, "drags": [{"x": 0.5, "y": 0.4, "dx": 0.05, "dy": 0.0,
                              "start": 0, "hold": 15, "kind": "drag"}]}

- x, y: the point in 0..1 of the picture's width and height (0 = left/top edge, 1 = right/bottom).
- dx, dy: the drag vector in units of picture width (dx) and height (dy).
- start: first frame of the interaction (default 0); hold: frames the drag is held before release
  (default: the node's hold_frames); both in frames at the node's fps, numbers >= 0.
- kind: "drag" (pull, hold, release; the default) or "poke" (an impulse at start; dx, dy give its
  direction and size; hold is ignored).

Pixels: a picture of W x H pixels has pixel centres at integer coordinates, so the point maps to
(x W - 0.5, y H - 0.5) and the vector to (dx W, dy H). Several entries are several interactions,
at the same time or not. An empty string means no interaction.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..spectral import MotionError

DRAG_FORMAT_VERSION = 1
DRAG_KINDS = ("drag", "poke")
EMPTY_DRAGS_JSON = '{"version": 1, "drags": []}'
# Limits on what the text may hold: a person drags a handful of points; anything far beyond is a
# pasted or generated mistake that would otherwise run for minutes (each drag is a simulation).
MAX_DRAGS = 64
MAX_TEXT_CHARS = 64_000
MAX_VECTOR = 4.0  # |dx|, |dy| in picture widths / heights: longer pulls push everything off the picture
MAX_FRAME_NUMBER = 100_000  # start and hold, in frames
EXAMPLE = '{"version": 1, "drags": [{"x": 0.5, "y": 0.4, "dx": 0.05, "dy": 0.0, "kind": "drag"}]}'


@dataclass(frozen=True)
class Drag:
    """One interaction in pixels of the simulated picture.

    x, y: pixel coordinates (pixel centres at integers); dx, dy: vector in pixels;
    start, hold: frames at the simulation's fps; kind: "drag" or "poke".
    """

    x: float
    y: float
    dx: float
    dy: float
    start: float = 0.0
    hold: float = 15.0
    kind: str = "drag"


def _number(entry: dict[str, Any], key: str, index: int, default: float | None = None) -> float:
    if key not in entry:
        if default is None:
            raise MotionError(f"drag {index + 1} has no '{key}'; every drag needs x, y, dx and dy. Example: {EXAMPLE}")
        return float(default)
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MotionError(f"drag {index + 1} has {key}={value!r}; it must be a finite number.")
    return float(value)


def _bounded_int(digits: str) -> float:
    """JSON integers as floats; absurdly long ones become infinity (refused as not finite) instead
    of Python's ValueError for integers over 4300 digits or an OverflowError in float()."""
    return float(digits) if len(digits) <= 308 else math.inf


def parse_drag_entries(text: str) -> list[dict[str, Any]]:
    """The list of raw drag entries in a drag JSON string; raises MotionError with the fix."""
    if text is None or not str(text).strip():
        return []
    text = str(text)
    if len(text) > MAX_TEXT_CHARS:
        raise MotionError(f"the drags text is {len(text)} characters long, more than {MAX_TEXT_CHARS}; give at most "
                          f"{MAX_DRAGS} drags like {EXAMPLE}")
    try:
        data = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as error:
        raise MotionError(
            f"the drags text is not valid JSON ({error.msg} at line {error.lineno} column {error.colno}); "
            f"expected for example {EXAMPLE}"
        ) from error
    except RecursionError as error:
        raise MotionError(f"the drags JSON is nested too deeply; expected a flat list like {EXAMPLE}") from error
    if not isinstance(data, dict) or not isinstance(data.get("drags"), list):
        raise MotionError(f"the drags JSON must be an object with a 'drags' list, like {EXAMPLE}")
    if data.get("version", DRAG_FORMAT_VERSION) != DRAG_FORMAT_VERSION:
        raise MotionError(f"the drags JSON has version {data.get('version')!r}; this node reads version 1.")
    if len(data["drags"]) > MAX_DRAGS:
        raise MotionError(f"the drags JSON holds {len(data['drags'])} drags; at most {MAX_DRAGS} are simulated. "
                          "Remove some.")
    for index, entry in enumerate(data["drags"]):
        if not isinstance(entry, dict):
            raise MotionError(f"drag {index + 1} is {entry!r}, not an object like {EXAMPLE}")
    return data["drags"]


def drags_from_json(text: str, width: int, height: int, default_hold: float = 15.0) -> list[Drag]:
    """Validated drags in pixels of a width x height picture.

    Raises MotionError for malformed JSON, points outside 0..1, zero-length vectors, negative
    start or hold and unknown kinds, naming the drag (1-based) and the fix.
    """
    drags = []
    for index, entry in enumerate(parse_drag_entries(text)):
        x, y = _number(entry, "x", index), _number(entry, "y", index)
        dx, dy = _number(entry, "dx", index), _number(entry, "dy", index)
        start = _number(entry, "start", index, 0.0)
        hold = _number(entry, "hold", index, default_hold)
        kind = entry.get("kind", "drag")
        if kind not in DRAG_KINDS:
            raise MotionError(f"drag {index + 1} has kind {kind!r}; use 'drag' or 'poke'.")
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise MotionError(
                f"drag {index + 1} is at ({x}, {y}), outside the picture; x and y are fractions of the "
                "picture's width and height in 0..1."
            )
        if dx == 0.0 and dy == 0.0:
            raise MotionError(f"drag {index + 1} at ({x}, {y}) has zero length; give it a direction (dx, dy) or remove it.")
        if start < 0 or hold < 0:
            raise MotionError(f"drag {index + 1} has start={start}, hold={hold}; frames must be >= 0.")
        if max(start, hold) > MAX_FRAME_NUMBER:
            raise MotionError(f"drag {index + 1} has start={start}, hold={hold}; frames must be at most "
                              f"{MAX_FRAME_NUMBER}.")
        if abs(dx) > MAX_VECTOR or abs(dy) > MAX_VECTOR:
            raise MotionError(f"drag {index + 1} has dx={dx}, dy={dy}; the vector is in picture widths and heights, "
                              f"at most {MAX_VECTOR:g} each (0.05 is a gentle pull).")
        drags.append(
            Drag(x=x * width - 0.5, y=y * height - 0.5, dx=dx * width, dy=dy * height, start=start, hold=hold, kind=kind)
        )
    return drags
