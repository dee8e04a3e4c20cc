"""Shader-node helpers of the scene engine's Blender script (render_scene.py, which imports this
module from its own folder): colour arithmetic, noise, ranges, and recipe 4's weathered rock.
Runs only in the Python that has `bpy`; sockets in, sockets out."""

from __future__ import annotations


def multiply_colours(nodes, links, a, b):
    """The component-wise product of two colour (or vector) sockets."""
    multiply = nodes.new("ShaderNodeVectorMath")
    multiply.operation = "MULTIPLY"
    links.new(a, multiply.inputs[0])
    links.new(b, multiply.inputs[1])
    return multiply.outputs["Vector"]


def math(nodes, links, operation: str, a, b):
    """A ShaderNodeMath of two inputs, each a socket or a number."""
    node = nodes.new("ShaderNodeMath")
    node.operation = operation
    for slot, value in enumerate((a, b)):
        if isinstance(value, (int, float)):
            node.inputs[slot].default_value = value
        else:
            links.new(value, node.inputs[slot])
    return node.outputs["Value"]


def scaled(nodes, links, colour, factor, low: float, high: float):
    """colour times factor (0..1) mapped to [low, high]: a texture's light and dark patches."""
    ramp = nodes.new("ShaderNodeMapRange")
    ramp.inputs["To Min"].default_value = low
    ramp.inputs["To Max"].default_value = high
    links.new(factor, ramp.inputs["Value"])
    return multiply_colours(nodes, links, colour, ramp.outputs["Result"])


def noise(nodes, links, coords, scale: float, detail: float = 6.0, roughness: float = 0.55):
    node = nodes.new("ShaderNodeTexNoise")
    links.new(coords, node.inputs["Vector"])
    node.inputs["Scale"].default_value = scale
    node.inputs["Detail"].default_value = detail
    node.inputs["Roughness"].default_value = roughness
    return node.outputs["Fac"]


def colour_socket(nodes, rgb):
    """A constant colour (linear RGB) as a socket."""
    constant = nodes.new("ShaderNodeRGB")
    constant.outputs["Color"].default_value = (*rgb, 1.0)
    return constant.outputs["Color"]


def mix_colours(nodes, links, a, b, factor):
    """a + factor (b - a) for colour sockets (b may be an (r, g, b) tuple), factor a 0..1 socket."""
    if isinstance(b, tuple):
        b = colour_socket(nodes, b)
    difference = nodes.new("ShaderNodeVectorMath")
    difference.operation = "SUBTRACT"
    links.new(b, difference.inputs[0])
    links.new(a, difference.inputs[1])
    step = nodes.new("ShaderNodeVectorMath")
    step.operation = "SCALE"
    links.new(difference.outputs["Vector"], step.inputs[0])
    links.new(factor, step.inputs["Scale"])
    total = nodes.new("ShaderNodeVectorMath")
    total.operation = "ADD"
    links.new(a, total.inputs[0])
    links.new(step.outputs["Vector"], total.inputs[1])
    return total.outputs["Vector"]


def ramp(nodes, links, value, low: float, high: float):
    """value mapped from [low, high] to [0, 1], clamped."""
    node = nodes.new("ShaderNodeMapRange")
    node.inputs["From Min"].default_value = low
    node.inputs["From Max"].default_value = high
    links.new(value, node.inputs["Value"])
    return node.outputs["Result"]


def weathered(nodes, links, coords, colour, look: dict):
    """Recipe 4's rock (gorge.rock_look): darker fine crevices, lichen spots, moss on faces turned
    up and fallen leaves on ledges, each as much as the look's amount (0..1) says; coordinates in
    metres, so the detail is as fine as foliage's at the same distance."""
    cracks = nodes.new("ShaderNodeTexVoronoi")
    cracks.feature = "DISTANCE_TO_EDGE"
    cracks.inputs["Scale"].default_value = 7.0
    links.new(coords, cracks.inputs["Vector"])
    colour = scaled(nodes, links, colour, ramp(nodes, links, cracks.outputs["Distance"], 0.0, 0.05),
                    1.0 - 0.6 * look["crevices"], 1.0)
    normal = nodes.new("ShaderNodeSeparateXYZ")
    links.new(nodes.new("ShaderNodeNewGeometry").outputs["Normal"], normal.inputs["Vector"])
    upward = ramp(nodes, links, normal.outputs["Z"], 0.1, 0.7)
    if look["lichen"] > 0:
        spots = ramp(nodes, links, noise(nodes, links, coords, 14.0, 3.0), 0.68 - 0.15 * look["lichen"], 0.7 - 0.15 * look["lichen"])
        colour = mix_colours(nodes, links, colour, (0.5, 0.5, 0.42), math(nodes, links, "MULTIPLY", spots, 0.8))
    if look["moss"] > 0:
        patches = ramp(nodes, links, noise(nodes, links, coords, 1.2, 6.0), 0.62 - 0.3 * look["moss"], 0.7 - 0.3 * look["moss"])
        where = math(nodes, links, "MULTIPLY", patches, upward)
        moss = scaled(nodes, links, colour_socket(nodes, look["moss_colour"]), noise(nodes, links, coords, 45.0, 4.0), 0.55, 1.45)
        colour = mix_colours(nodes, links, colour, moss, math(nodes, links, "MINIMUM", math(nodes, links, "MULTIPLY", where, 1.5), 1.0))
    if look["litter"] > 0:
        leaves = nodes.new("ShaderNodeTexVoronoi")
        leaves.inputs["Scale"].default_value = 22.0
        links.new(coords, leaves.inputs["Vector"])
        chance = nodes.new("ShaderNodeSeparateXYZ")
        links.new(leaves.outputs["Color"], chance.inputs["Vector"])
        fallen = math(nodes, links, "GREATER_THAN", chance.outputs["X"], 1.0 - look["litter"])
        fallen = math(nodes, links, "MULTIPLY", fallen, ramp(nodes, links, normal.outputs["Z"], 0.3, 0.6))
        leaf = scaled(nodes, links, colour_socket(nodes, look["litter_colour"]), chance.outputs["Y"], 0.5, 1.5)
        colour = mix_colours(nodes, links, colour, leaf, fallen)
    return colour
