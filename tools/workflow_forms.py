"""Build a workflow's two forms from one compact description.

- the UI form (what users open, save and share; ComfyUI frontend workflow version 0.4):
  nodes with id/type/pos/size/flags/order/mode/inputs/outputs/properties/widgets_values, links as
  [id, from node, from slot, to node, to slot, type], groups, config, extra, version;
- the API form (what scripts POST to /prompt): {node id: {"class_type", "inputs", "_meta"}}, an
  input being a widget value or a link [source node id, output slot].

A description names each node by a key, sets the widget values it changes from the defaults and
connects inputs with From(key, output name). Widgets not given keep their INPUT_TYPES default.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from .workflow_nodes import UPLOAD_VALUE, VHS_PREVIEW_WIDGET, NodeSpec

UI_VERSION = 0.4
COLUMN_WIDTH = 400  # canvas units between the left edges of two columns
NODE_WIDTH = 330
ROW_GAP = 40
TITLE_HEIGHT = 30  # a node's title bar, drawn above its pos
GROUP_HEADER = 44  # room above a group's node titles for the group's own title
NOTE_COLOR, NOTE_BGCOLOR = "#432", "#653"
GROUP_COLOR = "#3f789e"
# Extra height of nodes that show a picture or a video under their widgets.
PREVIEW_HEIGHT = {"LoadImage": 250, "LoadVideo": 250, "SaveVideo": 280, "VHS_VideoCombine": 280,
                  "GIDModalSimulation": 260}  # the drag editor and live preview (web/js)
NAMESPACE = uuid.UUID("6f1f4f52-8d0c-4a55-9a55-4f8c2a3c0b1d")  # stable workflow ids per name


@dataclass(frozen=True)
class From:
    """A link from output `output` (its RETURN_NAMES name) of the node with key `key`."""

    key: str
    output: str


@dataclass
class Node:
    """One node of a description: key (unique in the workflow), type, widget values and links."""

    key: str
    type: str
    values: dict[str, Any] = field(default_factory=dict)
    column: int = 0
    row: int = 0
    title: str | None = None
    group: str | None = None


@dataclass
class Workflow:
    name: str
    nodes: list[Node]
    note: str = ""  # shown in a Note node at the top left of the UI form


class DescriptionError(ValueError):
    """A description that cannot become a workflow (unknown node, input or output)."""


def _widget_value(spec: NodeSpec, name: str, given: Any) -> Any:
    """The value a widget holds: the given one, or its default when it is linked or not given."""
    if given is None or isinstance(given, From):
        return spec.input(name).default()
    return given


def _check_description(workflow: Workflow, specs: dict[str, NodeSpec]) -> None:
    keys = [node.key for node in workflow.nodes]
    if len(set(keys)) != len(keys):
        raise DescriptionError(f"{workflow.name}: node keys repeat: {keys}")
    by_key = {node.key: node for node in workflow.nodes}
    for node in workflow.nodes:
        if node.type not in specs:
            raise DescriptionError(f"{workflow.name}: {node.key} has unknown type {node.type}")
        spec = specs[node.type]
        extra = spec.extra_widgets(node.values)
        for name, value in node.values.items():
            if spec.input(name) is None and name not in extra:
                raise DescriptionError(f"{workflow.name}: {node.type} has no input {name!r}")
            if isinstance(value, From):
                if value.key not in by_key:
                    raise DescriptionError(f"{workflow.name}: {node.key}.{name} links unknown node {value.key}")
                specs[by_key[value.key].type].output_slot(value.output)  # raises KeyError if unknown
        for socket in spec.sockets:
            if not socket.optional and not isinstance(node.values.get(socket.name), From):
                raise DescriptionError(f"{workflow.name}: {node.key}.{socket.name} must be linked")


def _execution_order(workflow: Workflow) -> dict[str, int]:
    """Topological order (sources first, description order among equals), as the frontend's `order`."""
    depends = {node.key: {v.key for v in node.values.values() if isinstance(v, From)} for node in workflow.nodes}
    order: dict[str, int] = {}
    while len(order) < len(depends):
        ready = [key for key in depends if key not in order and depends[key] <= set(order)]
        if not ready:
            raise DescriptionError(f"{workflow.name}: the links form a cycle")
        order[ready[0]] = len(order)
    return order


def _node_height(spec: NodeSpec, linked_widgets: int, values: dict) -> int:
    slots = max(len(spec.sockets) + linked_widgets, len(spec.outputs))
    widgets = sum(len(w.ui_widget_names()) for w in spec.widgets) + len(spec.extra_widgets(values))
    multiline = sum(80 for w in spec.widgets if w.options.get("multiline"))
    return 30 + 22 * slots + 24 * widgets + multiline + PREVIEW_HEIGHT.get(spec.type, 0)


def build_api(workflow: Workflow, specs: dict[str, NodeSpec]) -> dict[str, dict]:
    """The API form: {"1": {"inputs": {...}, "class_type": ..., "_meta": {"title": ...}}, ...}."""
    _check_description(workflow, specs)
    ids = {node.key: str(index + 1) for index, node in enumerate(workflow.nodes)}
    types = {node.key: node.type for node in workflow.nodes}
    graph = {}
    for node in workflow.nodes:
        spec = specs[node.type]
        inputs: dict[str, Any] = {}
        for name, value in node.values.items():
            if isinstance(value, From):
                inputs[name] = [ids[value.key], specs[types[value.key]].output_slot(value.output)]
        for widget in spec.widgets:
            inputs.setdefault(widget.name, _widget_value(spec, widget.name, node.values.get(widget.name)))
        for name, extra in spec.extra_widgets(node.values).items():
            inputs.setdefault(name, node.values.get(name, extra.default()))
        ordered = {i.name: inputs[i.name] for i in spec.inputs if i.name in inputs}
        ordered.update({name: value for name, value in inputs.items() if name not in ordered})
        graph[ids[node.key]] = {"inputs": ordered, "class_type": node.type, "_meta": {"title": node.title or spec.display_name}}
    return graph


def _widgets_values(spec: NodeSpec, values: dict) -> list | dict:
    if spec.key_value_widgets:
        saved: dict[str, Any] = {}
        for widget in spec.widgets:
            saved[widget.name] = _widget_value(spec, widget.name, values.get(widget.name))
            if widget.name == "format":
                for name, extra in spec.extra_widgets(values).items():
                    saved[name] = values.get(name, extra.default())
        saved[VHS_PREVIEW_WIDGET] = {"hidden": False, "paused": False, "params": {}}
        return saved
    saved_list: list[Any] = []
    for widget in spec.widgets:
        saved_list.append(_widget_value(spec, widget.name, values.get(widget.name)))
        if widget.has_control:
            saved_list.append("fixed")
        if widget.has_upload:
            saved_list.append(UPLOAD_VALUE)
    return saved_list


def build_ui(workflow: Workflow, specs: dict[str, NodeSpec]) -> dict[str, Any]:
    """The UI form (frontend workflow version 0.4) with a Note and one group per node group."""
    _check_description(workflow, specs)
    ids = {node.key: index + 1 for index, node in enumerate(workflow.nodes)}
    by_key = {node.key: node for node in workflow.nodes}
    order = _execution_order(workflow)
    links: list[list] = []
    ui_nodes: dict[str, dict] = {}
    outgoing: dict[tuple[str, int], list[int]] = {}

    for node in workflow.nodes:
        spec = specs[node.type]
        inputs = []
        linked = [(i, node.values.get(i.name)) for i in spec.sockets]
        linked += [(w, node.values[w.name]) for w in spec.widgets if isinstance(node.values.get(w.name), From)]
        for slot, (declared, value) in enumerate(linked):
            entry: dict[str, Any] = {"name": declared.name, "type": declared.kind}
            if declared.optional:
                entry["shape"] = 7
            if declared.is_widget:
                entry["widget"] = {"name": declared.name}
            entry["link"] = None
            if isinstance(value, From):
                link_id = len(links) + 1
                source = specs[by_key[value.key].type]
                from_slot = source.output_slot(value.output)
                links.append([link_id, ids[value.key], from_slot, ids[node.key], slot, source.outputs[from_slot][1]])
                outgoing.setdefault((value.key, from_slot), []).append(link_id)
                entry["link"] = link_id
            inputs.append(entry)
        widgets_linked = sum(1 for declared, _ in linked if declared.is_widget)
        ui_nodes[node.key] = {
            "id": ids[node.key],
            "type": node.type,
            "pos": [0, 0],
            "size": [NODE_WIDTH, _node_height(spec, widgets_linked, node.values)],
            "flags": {},
            "order": order[node.key] + 1,
            "mode": 0,
            "inputs": inputs,
            "outputs": [],
            **({"title": node.title} if node.title else {}),
            "properties": {"Node name for S&R": node.type},
            "widgets_values": _widgets_values(spec, node.values),
        }
    for node in workflow.nodes:
        outputs = specs[node.type].outputs
        ui_nodes[node.key]["outputs"] = [
            {"name": name, "type": kind, "links": outgoing.get((node.key, slot)) or None}
            for slot, (name, kind) in enumerate(outputs)
        ]

    note_height = 40 + 16 * (workflow.note.count("\n") + 1 + len(workflow.note) // 100)
    top = note_height + ROW_GAP + TITLE_HEIGHT + GROUP_HEADER
    _place(workflow, ui_nodes, top)
    nodes = list(ui_nodes.values())
    if workflow.note:
        nodes.insert(0, {
            "id": len(nodes) + 1, "type": "Note", "pos": [0, 0], "size": [2 * COLUMN_WIDTH - 40, note_height],
            "flags": {}, "order": 0, "mode": 0, "inputs": [], "outputs": [],
            "title": "About this workflow", "properties": {}, "widgets_values": [workflow.note],
            "color": NOTE_COLOR, "bgcolor": NOTE_BGCOLOR,
        })  # fmt: skip
    return {
        "id": str(uuid.uuid5(NAMESPACE, workflow.name)),
        "revision": 0,
        "last_node_id": max(node["id"] for node in nodes),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": _groups(workflow, ui_nodes),
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [40, 40]}},
        "version": UI_VERSION,
    }


def _place(workflow: Workflow, ui_nodes: dict[str, dict], top: int) -> None:
    """Grid layout: columns left to right, rows stacked downwards within each column."""
    row_tops: dict[int, int] = {}
    rows = sorted({node.row for node in workflow.nodes})
    y = top
    for row in rows:
        row_tops[row] = y
        tallest = max(ui_nodes[n.key]["size"][1] for n in workflow.nodes if n.row == row)
        y += tallest + ROW_GAP + TITLE_HEIGHT + GROUP_HEADER
    for node in workflow.nodes:
        ui_nodes[node.key]["pos"] = [node.column * COLUMN_WIDTH, row_tops[node.row]]


def _groups(workflow: Workflow, ui_nodes: dict[str, dict]) -> list[dict]:
    titles = list(dict.fromkeys(node.group for node in workflow.nodes if node.group))
    groups = []
    for index, title in enumerate(titles):
        members = [ui_nodes[node.key] for node in workflow.nodes if node.group == title]
        left = min(m["pos"][0] for m in members) - 10
        top = min(m["pos"][1] for m in members) - TITLE_HEIGHT - GROUP_HEADER
        right = max(m["pos"][0] + m["size"][0] for m in members) + 10
        bottom = max(m["pos"][1] + m["size"][1] for m in members) + 10
        groups.append({
            "id": index + 1, "title": title, "bounding": [left, top, right - left, bottom - top],
            "color": GROUP_COLOR, "font_size": 24, "flags": {},
        })  # fmt: skip
    return groups
