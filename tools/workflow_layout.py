"""Check the layout of a UI-form workflow as a user first sees it: opened at 100% zoom in a
1600x900 browser window, with the view the workflow saves (extra.ds).

Each rule is a problem sentence when broken (empty list = a sound layout):
- the saved view is 100% zoom, and every node and group lies inside the part of the window that
  the canvas shows (the frontend's top bar and side bar cover the rest), clear of the minimap and
  of the canvas info drawn over the canvas;
- every node is at least as big as the frontend draws it (its sockets, widgets, previews, title):
  a node saved smaller is grown by the frontend, over its neighbours;
- no two nodes overlap (a GID or VHS node's pack badge above its title included);
- every node (notes aside) lies inside one group, below the group's title, and groups do not overlap;
- no link passes behind a node it does not join.

Geometry follows the frontend (comfyui-frontend-package 1.27, litegraph): a node's `pos` is the top
left of its body, with the title bar (30 px) above it; a screen point is (graph point + offset) x
scale; sockets sit 20 px apart, widgets 24 px; a link is drawn as the cubic spline from the output
socket to the input socket with control points a quarter of their distance out horizontally.
"""

from __future__ import annotations

import math

from .workflow_nodes import FRONTEND_ONLY_NODES, VHS_PREVIEW_WIDGET, NodeSpec

VIEWPORT = (1600, 900)  # browser window, CSS pixels
# The canvas fills the window but for the side bar (64 px) and the tab and menu bars (78 px):
# x0, y0, x1, y1 in canvas pixels, where extra.ds puts graph point p at (p + offset) x scale.
CANVAS_AREA = (0, 0, VIEWPORT[0] - 64, VIEWPORT[1] - 78)
# Parts of the canvas drawn over by the frontend: the minimap and zoom controls at the bottom
# right, the canvas info (T, I, N, V, FPS) at the bottom left.
COVERED = {"the minimap": (1213, 557, 1536, 822), "the canvas info": (0, 742, 120, 822)}
TITLE_HEIGHT = 30
SLOT_HEIGHT = 20
WIDGET_HEIGHT = 24
GROUP_TITLE_HEIGHT = 34
GAP = 10  # nodes closer than this look joined
# A custom node's pack badge ("GID", "VHS") sits this high above its title bar.
BADGE_HEIGHT = 20
BADGED = ("GID", "VHS_")
# Extra height the frontend gives a node for what it shows under its widgets before a run. Measured
# in the frontend: a node saved too small is grown to its least size, which
# `python -m tools.workflow_screenshots --sizes` reads back.
PREVIEW_HEIGHT = {"LoadImage": 212, "LoadVideo": 127, "GIDModalSimulation": 268, "Note": 50, "MarkdownNote": 50}
# Widths below which the frontend widens a node to fit its widgets' labels (measured likewise).
MIN_WIDTH = {"GIDMatchMotionStatistics": 375, "GIDModalSimulation": 286, "ImageFromBatch": 264,
             "GIDSpectralToMotion": 256, "GIDMotionFromVideo": 249, "GIDSampleSpectralVolume": 241,
             "LoadImage": 229, "GetVideoComponents": 202, "GIDRender": 164}  # fmt: skip
DEFAULT_MIN_WIDTH = 210
TITLE_CHAR_WIDTH = 7.7  # a long title widens its node too, about this much per character
SPLINE_STEPS = 48

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def node_box(node: dict, badge: bool = True) -> Box:
    """The node's outline in graph units, title bar (and pack badge) included."""
    (x, y), (w, h) = node["pos"], node["size"]
    badge = BADGE_HEIGHT if badge and node["type"].startswith(BADGED) else 0
    return x, y - TITLE_HEIGHT - badge, x + w, y + h


def group_box(group: dict) -> Box:
    x, y, w, h = group["bounding"]
    return x, y, x + w, y + h


def _overlap(a: Box, b: Box, gap: float = 0) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def _inside(inner: Box, outer: Box) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def _name(node: dict) -> str:
    return f"node {node['id']} ({node['type']})"


def _widget_names(node: dict, spec: NodeSpec | None) -> list[str]:
    if spec is None:
        return []
    saved = node.get("widgets_values")
    if spec.key_value_widgets and isinstance(saved, dict):
        return [name for name in saved if name != VHS_PREVIEW_WIDGET]
    return [name for widget in spec.widgets for name in widget.ui_widget_names()]


def min_height(node: dict, spec: NodeSpec | None) -> float:
    """The least body height at which the frontend shows all of a node's sockets and widgets."""
    sockets = [entry for entry in node.get("inputs", []) if "widget" not in entry]
    rows = max(len(sockets), len(node.get("outputs", [])))
    widgets = len(_widget_names(node, spec)) if spec else len(node.get("widgets_values") or [])
    widget_height = widgets * WIDGET_HEIGHT + 8 if widgets else 0
    return rows * SLOT_HEIGHT + 6 + widget_height + PREVIEW_HEIGHT.get(node["type"], 0)


def input_point(node: dict, slot: int, spec: NodeSpec | None) -> tuple[float, float]:
    """Where the link into input `slot` ends: at its socket row, or at its widget for a widget input."""
    (x, y), inputs = node["pos"], node.get("inputs", [])
    entry = inputs[slot]
    if "widget" in entry:
        sockets = [e for e in inputs if "widget" not in e]
        rows = max(len(sockets), len(node.get("outputs", [])))
        names = _widget_names(node, spec)
        index = names.index(entry["widget"]["name"]) if entry["widget"]["name"] in names else 0
        return x, y + rows * SLOT_HEIGHT + 6 + (index + 0.5) * WIDGET_HEIGHT
    index = [e for e in inputs if "widget" not in e].index(entry)
    return x, y + (index + 0.7) * SLOT_HEIGHT


def output_point(node: dict, slot: int) -> tuple[float, float]:
    return node["pos"][0] + node["size"][0], node["pos"][1] + (slot + 0.7) * SLOT_HEIGHT


Point = tuple[float, float]


def spline(start: Point, end: Point, steps: int = SPLINE_STEPS) -> list[Point]:
    """Points along the frontend's link curve from an output socket to an input socket."""
    reach = 0.25 * math.dist(start, end)
    control = ((start[0] + reach, start[1]), (end[0] - reach, end[1]))
    points = []
    for i in range(steps + 1):
        t = i / steps
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
        points.append((a * start[0] + b * control[0][0] + c * control[1][0] + d * end[0],
                       a * start[1] + b * control[0][1] + c * control[1][1] + d * end[1]))  # fmt: skip
    return points


def _view_problems(workflow: dict, nodes: list[dict]) -> list[str]:
    ds = workflow.get("extra", {}).get("ds") or {}
    scale, (ox, oy), (ax0, ay0, ax1, ay1) = ds.get("scale", 1), ds.get("offset", (0, 0)), CANVAS_AREA
    problems = [] if scale == 1 else [f"the saved view (extra.ds) has scale {scale!r}: save it at 100% zoom (1)"]
    boxes = [(_name(node), node_box(node)) for node in nodes]
    boxes += [(f"group {group.get('title')!r}", group_box(group)) for group in workflow.get("groups", [])]
    for name, box in boxes:
        sx0, sy0, sx1, sy1 = ((v + o) * scale for v, o in zip(box, (ox, oy, ox, oy)))
        if sx0 < ax0 or sy0 < ay0 or sx1 > ax1 or sy1 > ay1:
            problems.append(f"{name} is off screen in a {VIEWPORT[0]}x{VIEWPORT[1]} window: it spans "
                            f"x {sx0:.0f}..{sx1:.0f}, y {sy0:.0f}..{sy1:.0f}, the canvas shows "
                            f"x {ax0}..{ax1}, y {ay0}..{ay1}")
        for cover, area in COVERED.items():
            if _overlap((sx0, sy0, sx1, sy1), area):
                problems.append(f"{name} lies under {cover} (canvas x {area[0]}..{area[2]}, y {area[1]}..{area[3]})")
    return problems


def _group_problems(workflow: dict, nodes: list[dict]) -> list[str]:
    groups = workflow.get("groups", [])
    problems = []
    for i, a in enumerate(groups):
        for b in groups[i + 1 :]:
            if _overlap(group_box(a), group_box(b)):
                problems.append(f"groups {a.get('title')!r} and {b.get('title')!r} overlap")
    for node in nodes:
        box = node_box(node, badge=False)  # the badge may stand on the group's title bar
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        holders = [g for g in groups if _inside((*centre, *centre), group_box(g))]
        if not holders:
            if node["type"] not in FRONTEND_ONLY_NODES:
                problems.append(f"{_name(node)} lies in no group")
            elif any(_overlap(box, group_box(g)) for g in groups):
                problems.append(f"{_name(node)} sticks into a group")
            continue
        group = holders[0]
        x0, y0, x1, y1 = group_box(group)
        if not _inside(box, (x0, y0 + GROUP_TITLE_HEIGHT, x1, y1)):
            problems.append(f"{_name(node)} sticks out of its group {group.get('title')!r}")
    return problems


def _link_problems(workflow: dict, nodes: dict, specs: dict[str, NodeSpec]) -> list[str]:
    problems = []
    for link_id, source_id, from_slot, target_id, to_slot, _ in workflow.get("links", []):
        source, target = nodes.get(source_id), nodes.get(target_id)
        if source is None or target is None:
            continue  # check_ui reports it
        points = spline(output_point(source, from_slot), input_point(target, to_slot, specs.get(target["type"])))
        for node in nodes.values():
            if node["id"] in (source_id, target_id):
                continue
            x0, y0, x1, y1 = node_box(node)
            if any(x0 < px < x1 and y0 < py < y1 for px, py in points):
                problems.append(f"link {link_id} ({_name(source)} -> {_name(target)}) passes behind {_name(node)}")
    return problems


def _size_problems(node: dict, spec: NodeSpec | None) -> list[str]:
    """A node saved smaller than the frontend draws it (the frontend then grows it over its neighbours)."""
    title = node.get("title") or (spec.display_name if spec else node["type"])
    narrowest = max(MIN_WIDTH.get(node["type"], DEFAULT_MIN_WIDTH), math.ceil(TITLE_CHAR_WIDTH * len(title)))
    least = min_height(node, spec)
    problems = []
    if node["size"][0] < narrowest:
        problems.append(f"{_name(node)} is saved {node['size'][0]:.0f} px wide, the frontend widens it to "
                        f"about {narrowest} px")
    if node["size"][1] < least:
        problems.append(f"{_name(node)} is saved {node['size'][1]:.0f} px tall, the frontend draws it at "
                        f"least {least:.0f} px tall")
    return problems


def check_layout(workflow: dict, specs: dict[str, NodeSpec]) -> list[str]:
    """Problems of a UI form's layout, as opened at 100% zoom in a 1600x900 window (see the module)."""
    nodes = list(workflow.get("nodes", []))
    problems = _view_problems(workflow, nodes)
    for node in nodes:
        problems += _size_problems(node, specs.get(node["type"]))
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            if _overlap(node_box(a), node_box(b), GAP):
                problems.append(f"{_name(a)} and {_name(b)} overlap (or lie closer than {GAP} px)")
    problems += _group_problems(workflow, nodes)
    problems += _link_problems(workflow, {node["id"]: node for node in nodes}, specs)
    return problems
