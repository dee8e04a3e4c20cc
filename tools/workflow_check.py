"""Check saved workflows (UI form and API form) against the real node definitions.

Each check returns a list of problems, one readable sentence each (empty = the workflow is sound):
unknown node types, inputs that a node does not declare (a renamed input), required inputs left
unconnected, widget values of the wrong type, outside min..max or not among a combo's choices,
links between mismatched types or to missing nodes and slots, and nodes that feed no output.
`ui_to_api` converts a UI form the way the frontend does when it queues it, so the two shipped
forms can be compared.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from .workflow_nodes import (
    COMBO,
    CONTROL_VALUES,
    FRONTEND_ONLY_NODES,
    INPUT_FILE_COMBOS,
    UPLOAD_VALUE,
    VHS_PREVIEW_WIDGET,
    InputSpec,
    NodeSpec,
    types_match,
)

# (node type, input name) -> function(value) returning a problem sentence or None.
ValueChecks = dict[tuple[str, str], Callable[[Any], "str | None"]]
UI_KEYS = ("last_node_id", "last_link_id", "nodes", "links", "groups", "config", "extra", "version")


def check_value(node_type: str, spec: InputSpec, value: Any, input_files: set[str],
                extra_checks: ValueChecks | None = None) -> str | None:
    """Why `value` is not accepted by widget input `spec`, or None when it is."""
    where = f"{node_type}.{spec.name}"
    if spec.kind == COMBO:
        if (node_type, spec.name) in INPUT_FILE_COMBOS:
            if value not in input_files:
                return f"{where} = {value!r} is not one of the example input files {sorted(input_files)}"
        elif value not in spec.choices:
            return f"{where} = {value!r} is not one of its choices {list(spec.choices)}"
    elif spec.kind == "BOOLEAN":
        if not isinstance(value, bool):
            return f"{where} = {value!r} must be true or false"
    elif spec.kind == "STRING":
        if not isinstance(value, str):
            return f"{where} = {value!r} must be a string"
    elif spec.kind in ("INT", "FLOAT"):
        wanted = (int,) if spec.kind == "INT" else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted) or not math.isfinite(value):
            return f"{where} = {value!r} must be a finite {spec.kind}"
        if "min" in spec.options and value < spec.options["min"]:
            return f"{where} = {value!r} is below its minimum {spec.options['min']}"
        if "max" in spec.options and value > spec.options["max"]:
            return f"{where} = {value!r} is above its maximum {spec.options['max']}"
    check = (extra_checks or {}).get((node_type, spec.name))
    return check(value) if check else None


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _unreachable(edges: dict[str, set[str]], outputs: set[str], nodes: set[str]) -> set[str]:
    """Nodes from which no output node can be reached (edges: node -> the nodes it feeds)."""
    reaches = set(outputs)
    changed = True
    while changed:
        changed = False
        for node in nodes - reaches:
            if edges.get(node, set()) & reaches:
                reaches.add(node)
                changed = True
    return nodes - reaches


def check_api(graph: dict, specs: dict[str, NodeSpec], input_files: set[str],
              extra_checks: ValueChecks | None = None) -> list[str]:
    """Problems of an API-form graph {id: {"class_type", "inputs"}} (what /prompt validates, and more)."""
    if not isinstance(graph, dict) or not graph:
        return ["the API form must be a non-empty object of nodes"]
    problems = []
    edges: dict[str, set[str]] = {}
    for node_id, node in graph.items():
        node_type = node.get("class_type")
        spec = specs.get(node_type)
        if spec is None:
            problems.append(f"node {node_id}: unknown node type {node_type!r}")
            continue
        inputs = node.get("inputs", {})
        extra = spec.extra_widgets(inputs)
        for name, value in inputs.items():
            declared = spec.input(name) or extra.get(name)
            where = f"node {node_id} ({node_type})"
            if declared is None:
                problems.append(f"{where}: input {name!r} is not declared by {node_type}")
            elif _is_link(value):
                source_id, slot = value
                source = graph.get(source_id)
                source_spec = specs.get(source.get("class_type")) if source else None
                if source is None:
                    problems.append(f"{where}: {name} links missing node {source_id}")
                elif source_spec is None:
                    continue  # reported at the source node
                elif not 0 <= slot < len(source_spec.outputs):
                    problems.append(f"{where}: {name} links output slot {slot} of {source_spec.type}, which has "
                                    f"{len(source_spec.outputs)} outputs")
                else:
                    kind = source_spec.outputs[slot][1]
                    if not types_match(kind, declared.kind):
                        problems.append(f"{where}: {name} ({declared.kind}) is linked to {source_spec.type} output "
                                        f"{slot} of type {kind}")
                    edges.setdefault(source_id, set()).add(node_id)
            elif not declared.is_widget:
                problems.append(f"{where}: socket input {name} ({declared.kind}) must be a link, got {value!r}")
            else:
                problem = check_value(node_type, declared, value, input_files, extra_checks)
                if problem:
                    problems.append(f"{where}: {problem}")
        for declared in spec.inputs:
            if not declared.optional and declared.name not in inputs:
                problems.append(f"node {node_id} ({node_type}): required input {declared.name} is missing")
    outputs = {i for i, n in graph.items() if n.get("class_type") in specs and specs[n["class_type"]].output_node}
    if not outputs:
        problems.append("the graph has no output node, so /prompt would run nothing")
    for node_id in sorted(_unreachable(edges, outputs, set(graph))):
        problems.append(f"node {node_id} ({graph[node_id].get('class_type')}) feeds no output node, so it never runs")
    return problems


def _ui_widget_problems(node: dict, spec: NodeSpec, input_files: set[str], extra_checks) -> list[str]:
    where = f"node {node['id']} ({spec.type})"
    saved = node.get("widgets_values", [])
    problems = []
    if spec.key_value_widgets:
        if not isinstance(saved, dict):
            return [f"{where}: widgets_values must be an object keyed by widget name (VideoHelperSuite)"]
        expected = {w.name: w for w in spec.widgets}
        expected.update(spec.extra_widgets(saved))
        for name in saved:
            if name not in expected and name != VHS_PREVIEW_WIDGET:
                problems.append(f"{where}: widgets_values has {name!r}, which is not a widget of {spec.type}")
        for name, declared in expected.items():
            if name not in saved:
                problems.append(f"{where}: widgets_values lacks {name!r}")
            else:
                problem = check_value(spec.type, declared, saved[name], input_files, extra_checks)
                problems += [f"{where}: {problem}"] if problem else []
        return problems
    if not isinstance(saved, list):
        return [f"{where}: widgets_values must be a list"]
    names = [(w, name) for w in spec.widgets for name in w.ui_widget_names()]
    if len(saved) != len(names):
        return [f"{where}: widgets_values has {len(saved)} values but {spec.type} has {len(names)} widgets "
                f"({[name for _, name in names]})"]
    for (declared, name), value in zip(names, saved):
        if name == "control_after_generate":
            problem = None if value in CONTROL_VALUES else f"{spec.type}.{declared.name} control = {value!r}"
        elif name == "upload":
            problem = None if value == UPLOAD_VALUE else f"{spec.type}.{declared.name} upload = {value!r}"
        else:
            problem = check_value(spec.type, declared, value, input_files, extra_checks)
        problems += [f"{where}: {problem}"] if problem else []
    return problems


def check_ui(workflow: dict, specs: dict[str, NodeSpec], input_files: set[str],
             extra_checks: ValueChecks | None = None) -> list[str]:
    """Problems of a UI-form workflow (frontend version 0.4): nodes, inputs, widgets and links."""
    missing = [key for key in UI_KEYS if key not in workflow]
    if missing:
        return [f"the UI form lacks {missing}"]
    problems = [] if workflow["version"] == 0.4 else [f"version is {workflow['version']!r}, expected 0.4"]
    nodes = {node["id"]: node for node in workflow["nodes"]}
    links = {link[0]: link for link in workflow["links"]}
    if len(nodes) != len(workflow["nodes"]) or len(links) != len(workflow["links"]):
        problems.append("node ids or link ids repeat")
    if nodes and workflow["last_node_id"] < max(nodes):
        problems.append(f"last_node_id {workflow['last_node_id']} is below the largest node id {max(nodes)}")
    if links and workflow["last_link_id"] < max(links):
        problems.append(f"last_link_id {workflow['last_link_id']} is below the largest link id {max(links)}")
    edges: dict[str, set[str]] = {}
    for node in nodes.values():
        spec = specs.get(node["type"])
        where = f"node {node['id']} ({node['type']})"
        if node["type"] in FRONTEND_ONLY_NODES:
            if not (isinstance(node.get("widgets_values"), list) and all(isinstance(v, str) for v in node["widgets_values"])):
                problems.append(f"{where}: a note holds its text as widgets_values [text]")
            continue
        if spec is None:
            problems.append(f"{where}: unknown node type {node['type']!r} (it would show as missing, in red)")
            continue
        if node.get("mode", 0) != 0:
            problems.append(f"{where}: mode {node['mode']} (muted or bypassed) in an example workflow")
        inputs = node.get("inputs", [])
        for entry in inputs:
            declared = spec.input(entry.get("name"))
            if declared is None:
                problems.append(f"{where}: input {entry.get('name')!r} is not declared by {spec.type}")
            elif declared.is_widget and "widget" not in entry:
                problems.append(f"{where}: input {declared.name} is a widget; its socket entry needs a widget name")
            elif not declared.is_widget and entry.get("type") != declared.kind:
                problems.append(f"{where}: input {declared.name} is saved as type {entry.get('type')!r}, "
                                f"declared {declared.kind}")
        connected = {entry.get("name") for entry in inputs if entry.get("link") is not None}
        for declared in spec.sockets:
            if not declared.optional and declared.name not in connected:
                problems.append(f"{where}: required input {declared.name} ({declared.kind}) is not connected")
        saved_outputs = [(o.get("name"), o.get("type")) for o in node.get("outputs", [])]
        if [t for _, t in saved_outputs] != [t for _, t in spec.outputs]:
            problems.append(f"{where}: outputs {saved_outputs} do not match {spec.type}'s {list(spec.outputs)}")
        problems += _ui_widget_problems(node, spec, input_files, extra_checks)
    for link_id, link in links.items():
        problems += _ui_link_problems(link, nodes, specs, edges)
    for node in nodes.values():
        for slot, entry in enumerate(node.get("inputs", [])):
            if entry.get("link") is not None and links.get(entry["link"], [None] * 5)[3:5] != [node["id"], slot]:
                problems.append(f"node {node['id']}: input {entry.get('name')} names link {entry['link']}, "
                                "which does not end there")
        for slot, entry in enumerate(node.get("outputs", [])):
            for link_id in entry.get("links") or []:
                if links.get(link_id, [None] * 3)[1:3] != [node["id"], slot]:
                    problems.append(f"node {node['id']}: output {entry.get('name')} names link {link_id}, "
                                    "which does not start there")
    runnable = {str(i) for i, n in nodes.items() if n["type"] in specs}
    outputs = {str(i) for i, n in nodes.items() if n["type"] in specs and specs[n["type"]].output_node}
    if not outputs:
        problems.append("the workflow has no output node, so queueing it would run nothing")
    for node_id in sorted(_unreachable(edges, outputs, runnable)):
        problems.append(f"node {node_id} ({nodes[int(node_id)]['type']}) feeds no output node, so it never runs")
    return problems


def _ui_link_problems(link: list, nodes: dict, specs: dict[str, NodeSpec], edges: dict) -> list[str]:
    if not (isinstance(link, list) and len(link) == 6):
        return [f"link {link!r} must be [id, from node, from slot, to node, to slot, type]"]
    link_id, source_id, from_slot, target_id, to_slot, kind = link
    source, target = nodes.get(source_id), nodes.get(target_id)
    if source is None or target is None:
        return [f"link {link_id} joins missing node {source_id if source is None else target_id}"]
    source_spec, target_spec = specs.get(source["type"]), specs.get(target["type"])
    if source_spec is None or target_spec is None:
        return []  # reported at the node
    if not 0 <= from_slot < len(source_spec.outputs):
        return [f"link {link_id} starts at output slot {from_slot} of {source_spec.type}, which has "
                f"{len(source_spec.outputs)} outputs"]
    if not 0 <= to_slot < len(target.get("inputs", [])):
        return [f"link {link_id} ends at input slot {to_slot} of node {target_id}, which has "
                f"{len(target.get('inputs', []))} inputs"]
    declared = target_spec.input(target["inputs"][to_slot].get("name"))
    output_type = source_spec.outputs[from_slot][1]
    problems = []
    if kind != output_type:
        problems.append(f"link {link_id} is typed {kind!r} but {source_spec.type} output {from_slot} is {output_type}")
    if declared is not None and not types_match(output_type, declared.kind):
        problems.append(f"link {link_id} joins {source_spec.type} output {from_slot} ({output_type}) to "
                        f"{target_spec.type}.{declared.name} ({declared.kind})")
    edges.setdefault(str(source_id), set()).add(str(target_id))
    return problems


def ui_to_api(workflow: dict, specs: dict[str, NodeSpec]) -> dict[str, dict]:
    """The API form the frontend queues for a UI form (titles left out): widget values by name,
    control and upload widgets dropped, linked inputs as [source id, slot], notes left out."""
    links = {link[0]: link for link in workflow["links"]}
    graph = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY_NODES:
            continue
        spec = specs[node["type"]]
        saved = node["widgets_values"]
        if spec.key_value_widgets:
            inputs = {name: value for name, value in saved.items() if name != VHS_PREVIEW_WIDGET}
        else:
            names = [name for w in spec.widgets for name in w.ui_widget_names()]
            inputs = {name: value for name, value in zip(names, saved) if name not in ("control_after_generate", "upload")}
        for entry in node.get("inputs", []):
            if entry.get("link") is not None:
                link = links[entry["link"]]
                inputs[entry["name"]] = [str(link[1]), link[2]]
        graph[str(node["id"])] = {"inputs": inputs, "class_type": node["type"]}
    return graph
