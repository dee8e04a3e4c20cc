"""Blender side of the scene engine: build one scene from its arrays and render frame 0.

Run by the engine as a subprocess in the Python that has `bpy` (the `scenes` extra), never imported
by gid_models (it needs bpy, which the rest of the project does not have):
    python render_scene.py SCENE.npz SCENE.json OUT_DIR [OFFSETS.npz]
SCENE.npz holds, per material M, M/vertices (V, 3), M/faces (F, 3), M/part (V,), M/s (V,), M/col (V, 3);
SCENE.json holds camera, sun, sky and render settings. Writes into OUT_DIR:
  beauty.png        the production render (Cycles, denoised), 8-bit sRGB
  attributes.npz    part (H, W) int32 (-1: still or sky), s (H, W) float32 station along the part,
                    position (H, W, 3) float32 world point seen by the pixel (m), all from one
                    camera sample per pixel so that no two surfaces are blended.
With OFFSETS.npz (per material M, M/offset (V, 3) m: the vertices moved to a later frame) it also
renders the moved scene's attribute pass at pixel centres and writes moved.npz: part, s and rest
(H, W, 3), the frame-0 position of the point each pixel sees then (the engine's check, validate.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import bpy
import numpy as np

from shader_nodes import math, multiply_colours, noise, scaled, weathered  # beside this script (run as a file)


def build_mesh(name: str, arrays: dict[str, np.ndarray]) -> bpy.types.Object:
    vertices, faces = arrays["vertices"], arrays["faces"]
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", vertices.astype(np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update()
    # stored +1 so that surfaces without the attribute (and the sky, which writes 0) read as still
    mesh.attributes.new("part", "FLOAT", "POINT").data.foreach_set("value", (arrays["part"] + 1).astype(np.float32))
    mesh.attributes.new("s", "FLOAT", "POINT").data.foreach_set("value", arrays["s"].astype(np.float32))
    rgba = np.concatenate([arrays["col"], np.ones((len(vertices), 1))], 1).astype(np.float32)
    mesh.attributes.new("col", "FLOAT_COLOR", "POINT").data.foreach_set("color", rgba.ravel())
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def surface_material(name: str, recipe: int = 1, look: dict | None = None) -> bpy.types.Material:
    """Principled surface coloured by the `col` attribute; foliage lets light through, ground and
    rock get a noise texture so they are not flat (recipe 2: textures in metres, see textured_colour;
    recipe 4: rock weathered by its `look`, see weathered)."""
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = nodes["Principled BSDF"]
    colour = nodes.new("ShaderNodeAttribute")
    colour.attribute_name = "col"
    base = colour.outputs["Color"]
    if recipe >= 2 and name in TEXTURES:
        base = textured_colour(nodes, links, name, base, bsdf, look)
    elif name in ("ground", "rock", "distant", "wood"):
        texture = nodes.new("ShaderNodeTexNoise")
        texture.inputs["Scale"].default_value = {"ground": 0.7, "rock": 4.0, "distant": 0.05, "wood": 8.0}[name]
        texture.inputs["Detail"].default_value = 6.0
        base = scaled(nodes, links, base, texture.outputs["Fac"], 0.55, 1.45)
    links.new(base, bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = {"foliage": 0.55, "water": 0.06}.get(name, 0.85)
    if name in ("grass", "foliage", "heads", "stems", "field"):
        translucent = nodes.new("ShaderNodeBsdfTranslucent")
        links.new(base, translucent.inputs["Color"])
        mix_shader = nodes.new("ShaderNodeMixShader")
        mix_shader.inputs["Fac"].default_value = 0.3 if name != "field" else 0.1
        output = nodes["Material Output"]
        links.new(bsdf.outputs["BSDF"], mix_shader.inputs[1])
        links.new(translucent.outputs["BSDF"], mix_shader.inputs[2])
        links.new(mix_shader.outputs["Shader"], output.inputs["Surface"])
    return material


# recipe 2: (fine scale, coarse scale) of the texture in features per metre, its contrast, bump strength
TEXTURES = {
    "field": (30.0, 0.4, 0.45, 0.0),     # grass too fine to model blade by blade
    "ground": (6.0, 0.5, 0.5, 0.3),      # dirt and gravel
    "rock": (3.0, 0.4, 0.6, 0.6),        # boulders and cliffs, with cracks
    "mountain": (0.08, 0.01, 0.6, 0.5),  # crags seen from hundreds of metres
    "distant": (0.1, 0.01, 0.4, 0.3),
    "walls": (0.0, 0.3, 0.2, 0.0),       # bricks or stones
    "roof": (0.0, 0.5, 0.25, 0.0),       # tiles
    "water": (4.0, 0.2, 0.15, 0.15),     # ripples: mostly a bumpy mirror
}


def textured_colour(nodes, links, name: str, colour, bsdf, look: dict | None = None):
    """Recipe 2's textures on object coordinates (metres; every object sits at the origin); rock
    given a look (recipe 4) is weathered too."""
    fine_scale, coarse_scale, contrast, bump = TEXTURES[name]
    coords = nodes.new("ShaderNodeTexCoord").outputs["Object"]
    colour = scaled(nodes, links, colour, noise(nodes, links, coords, coarse_scale, 3.0), 0.75, 1.25)
    if name == "walls":
        bricks = nodes.new("ShaderNodeTexBrick")
        links.new(coords, bricks.inputs["Vector"])
        bricks.inputs["Scale"].default_value = 2.0
        bricks.inputs["Mortar Size"].default_value = 0.015
        bricks.inputs["Color1"].default_value = (1.0, 1.0, 1.0, 1.0)
        bricks.inputs["Color2"].default_value = (0.75, 0.75, 0.75, 1.0)
        bricks.inputs["Mortar"].default_value = (1.6, 1.6, 1.6, 1.0)
        return multiply_colours(nodes, links, colour, bricks.outputs["Color"])
    if name == "roof":
        tiles = nodes.new("ShaderNodeTexWave")
        links.new(coords, tiles.inputs["Vector"])
        tiles.inputs["Scale"].default_value = 1.5
        tiles.inputs["Distortion"].default_value = 1.0
        return scaled(nodes, links, colour, tiles.outputs["Fac"], 1 - contrast, 1 + contrast)
    fine = noise(nodes, links, coords, fine_scale, 8.0, 0.65)
    colour = scaled(nodes, links, colour, fine, 1 - contrast, 1 + contrast)
    if name in ("rock", "mountain"):
        cracks = nodes.new("ShaderNodeTexVoronoi")
        cracks.feature = "DISTANCE_TO_EDGE"
        links.new(coords, cracks.inputs["Vector"])
        cracks.inputs["Scale"].default_value = fine_scale * 0.5
        edge = nodes.new("ShaderNodeMapRange")
        edge.inputs["From Max"].default_value = 0.08
        links.new(cracks.outputs["Distance"], edge.inputs["Value"])
        colour = scaled(nodes, links, colour, edge.outputs["Result"], 0.45, 1.0)
    if name == "rock" and look:
        colour = weathered(nodes, links, coords, colour, look)
    if bump > 0:
        node = nodes.new("ShaderNodeBump")
        node.inputs["Strength"].default_value = bump
        node.inputs["Distance"].default_value = 1.0 / fine_scale
        links.new(fine, node.inputs["Height"])
        links.new(node.outputs["Normal"], bsdf.inputs["Normal"])
    return colour


def emission_material(what: str) -> bpy.types.Material:
    """Unlit material writing (part, s, 0) or the world position as its colour."""
    material = bpy.data.materials.new(f"attribute_{what}")
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.remove(nodes["Principled BSDF"])
    emission = nodes.new("ShaderNodeEmission")
    if what == "part":
        combine = nodes.new("ShaderNodeCombineXYZ")
        for attribute, slot in (("part", 0), ("s", 1)):
            node = nodes.new("ShaderNodeAttribute")
            node.attribute_name = attribute
            links.new(node.outputs["Fac"], combine.inputs[slot])
        links.new(combine.outputs["Vector"], emission.inputs["Color"])
    elif what == "rest":
        node = nodes.new("ShaderNodeAttribute")
        node.attribute_name = "rest"
        links.new(node.outputs["Vector"], emission.inputs["Color"])
    else:
        geometry = nodes.new("ShaderNodeNewGeometry")
        links.new(geometry.outputs["Position"], emission.inputs["Color"])
    links.new(emission.outputs["Emission"], nodes["Material Output"].inputs["Surface"])
    return material


SKY_MAP_RESOLUTION = 256  # px, the sky's importance map (width; Cycles makes it half as high)


def set_world(settings: dict) -> tuple[bpy.types.World, bpy.types.World]:
    """The sky (physical Nishita model or a CC0 HDRI shipped with Blender) and a black world."""
    sky, sun = settings["sky"], settings["sun"]
    world = bpy.data.worlds.new("sky")
    world.use_nodes = True
    nodes, links = world.node_tree.nodes, world.node_tree.links
    background = nodes["Background"]
    background.inputs["Strength"].default_value = sky["strength"]
    if sky["kind"] == "hdri":
        texture = nodes.new("ShaderNodeTexEnvironment")
        folder = Path(bpy.utils.system_resource("DATAFILES", path="studiolights/world"))
        texture.image = bpy.data.images.load(str(folder / f"{sky['name']}.exr"))
        mapping = nodes.new("ShaderNodeMapping")
        mapping.inputs["Rotation"].default_value[2] = sky["rotation"]
        coords = nodes.new("ShaderNodeTexCoord")
        links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], texture.inputs["Vector"])
    else:
        texture = nodes.new("ShaderNodeTexSky")
        texture.sky_type = "NISHITA"
        texture.sun_disc = False
        texture.sun_elevation = sun["elevation"]
        texture.sun_rotation = sun["azimuth"]
        texture.air_density = sky["air"]
        texture.dust_density = sky["dust"]
    sky_colour = texture.outputs["Color"]
    if "clouds" in sky:
        sky_colour = add_clouds(nodes, links, sky_colour, sky["clouds"])
    links.new(sky_colour, background.inputs["Color"])
    # Cycles samples the sky for lighting from an importance map that it builds by evaluating the
    # world shader on a grid (1024 x 512 by default). With the cloud noise that build cost more
    # than the path tracing (about 5 of 10 CPU-seconds); 256 x 128 halves the render's cost and
    # changes the picture by about noise (48.7 dB PSNR against the default, benchmarks/scenes.py).
    world.cycles.sampling_method = "MANUAL"
    world.cycles.sample_map_resolution = SKY_MAP_RESOLUTION
    black = bpy.data.worlds.new("black")
    black.use_nodes = True
    black.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    return world, black


def add_clouds(nodes, links, sky_colour, clouds: dict):
    """A cloud layer over the sky: 4D noise on a dome above the camera (direction x, y over z + 0.15), grey-white
    with the sky's own brightness times `brightness`, fading out towards the horizon."""
    direction = nodes.new("ShaderNodeSeparateXYZ")
    links.new(nodes.new("ShaderNodeTexCoord").outputs["Generated"], direction.inputs["Vector"])
    # z + 0.15: a dome rather than a plane, so that clouds near the horizon stay clouds instead of
    # averaging into haze
    height = math(nodes, links, "ADD", direction.outputs["Z"], 0.15)
    plane = nodes.new("ShaderNodeCombineXYZ")
    for axis in ("X", "Y"):
        links.new(math(nodes, links, "DIVIDE", direction.outputs[axis], height), plane.inputs[axis])
    texture = nodes.new("ShaderNodeTexNoise")
    texture.noise_dimensions = "4D"
    links.new(plane.outputs["Vector"], texture.inputs["Vector"])
    texture.inputs["W"].default_value = clouds["offset"]
    texture.inputs["Scale"].default_value = clouds["scale"]
    texture.inputs["Detail"].default_value = 8.0
    texture.inputs["Roughness"].default_value = 0.6
    cover = nodes.new("ShaderNodeMapRange")
    # the noise's Fac mostly lies within 0.5 +- 0.15: put the cloud edge where `cover` of the sky is above it
    edge = 0.5 + 0.15 * (1.0 - 2.0 * clouds["cover"])
    cover.inputs["From Min"].default_value = edge - 0.5 * clouds["softness"]
    cover.inputs["From Max"].default_value = edge + 0.5 * clouds["softness"]
    links.new(texture.outputs["Fac"], cover.inputs["Value"])
    fade = nodes.new("ShaderNodeMapRange")
    fade.inputs["From Min"].default_value, fade.inputs["From Max"].default_value = 0.0, 0.04
    links.new(direction.outputs["Z"], fade.inputs["Value"])
    amount = math(nodes, links, "MULTIPLY", cover.outputs["Result"], fade.outputs["Result"])
    brightness = nodes.new("ShaderNodeRGBToBW")
    links.new(sky_colour, brightness.inputs["Color"])
    shade = nodes.new("ShaderNodeMapRange")
    shade.inputs["From Min"].default_value, shade.inputs["From Max"].default_value = 0.35, 0.65
    shade.inputs["To Min"].default_value = clouds["brightness"] * 0.45
    shade.inputs["To Max"].default_value = clouds["brightness"] * 1.35
    links.new(texture.outputs["Fac"], shade.inputs["Value"])
    grey = math(nodes, links, "MULTIPLY", brightness.outputs["Val"], shade.outputs["Result"])
    white = nodes.new("ShaderNodeCombineXYZ")
    for axis in ("X", "Y", "Z"):
        links.new(grey, white.inputs[axis])
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    links.new(amount, mix.inputs[0])
    links.new(sky_colour, mix.inputs[6])
    links.new(white.outputs["Vector"], mix.inputs[7])
    return mix.outputs[2]


def setup(settings: dict, arrays: dict[str, np.ndarray]) -> bpy.types.Scene:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.render.threads_mode = "FIXED"
    scene.render.threads = settings.get("threads", 1)
    scene.render.resolution_x, scene.render.resolution_y = settings["width"], settings["height"]
    scene.render.resolution_percentage = 100
    scene.cycles.seed = settings["seed"] % (2 ** 31)
    scene.cycles.sample_clamp_direct = 0.0
    scene.cycles.sample_clamp_indirect = 10.0
    for name in sorted({key.split("/")[0] for key in arrays}):
        obj = build_mesh(name, {key.split("/")[1]: arrays[key] for key in arrays if key.startswith(name + "/")})
        obj.data.materials.append(surface_material(name, settings.get("recipe", 1), settings.get("looks", {}).get(name)))
    cam = settings["camera"]
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(camera)
    camera.location = cam["location"]
    camera.rotation_euler = cam["euler"]
    camera.data.lens, camera.data.sensor_width, camera.data.sensor_fit = cam["focal_mm"], cam["sensor_mm"], "AUTO"
    camera.data.clip_start, camera.data.clip_end = 0.05, 5000.0
    if cam["fstop"] > 0:
        camera.data.dof.use_dof = True
        camera.data.dof.focus_distance = cam["focus_m"]
        camera.data.dof.aperture_fstop = cam["fstop"]
    scene.camera = camera
    sun = settings["sun"]
    light = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    light.data.energy = sun["strength"]
    light.data.angle = sun["angle"]
    # the lamp points down -z; tilt it to come from the sky model's sun position
    light.rotation_euler = (np.pi / 2 - sun["elevation"], 0.0, sun["azimuth"] + np.pi / 2)
    scene.collection.objects.link(light)
    return scene


def render_beauty(scene: bpy.types.Scene, world: bpy.types.World, settings: dict, path: Path) -> None:
    scene.world = world
    scene.view_layers[0].material_override = None
    scene.cycles.samples = settings["samples"]
    scene.cycles.use_adaptive_sampling = True
    scene.cycles.adaptive_threshold = 0.05
    scene.cycles.use_denoising = True
    scene.cycles.denoiser = "OPENIMAGEDENOISE"
    scene.cycles.max_bounces, scene.cycles.diffuse_bounces, scene.cycles.glossy_bounces = 4, 2, 1
    scene.cycles.transmission_bounces, scene.cycles.transparent_max_bounces = 2, 2
    scene.cycles.caustics_reflective = scene.cycles.caustics_refractive = False
    scene.cycles.filter_width = 1.5
    scene.view_settings.view_transform = "AgX"
    scene.view_settings.exposure = settings.get("exposure", 0.0)
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.color_depth = "8"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def render_attribute(scene: bpy.types.Scene, black: bpy.types.World, material: bpy.types.Material,
                     path: Path, filter_width: float = 1.0) -> np.ndarray:
    """One camera sample per pixel of an unlit override material; returns (H, W, 3) float32, top row first."""
    scene.world = black
    scene.view_layers[0].material_override = material
    scene.cycles.samples = 1
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 0
    scene.cycles.filter_width = filter_width
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.exposure = 0.0
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(path))
    image.colorspace_settings.name = "Non-Color"
    width, height = image.size
    pixels = np.empty(width * height * 4, np.float32)
    image.pixels.foreach_get(pixels)
    bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)[::-1, :, :3].copy()


def move_vertices(offsets: dict[str, np.ndarray]) -> None:
    """Displace each mesh by its offsets, keeping the old positions as the `rest` attribute."""
    for name, offset in offsets.items():
        mesh = bpy.data.objects[name].data
        rest = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", rest)
        mesh.attributes.new("rest", "FLOAT_VECTOR", "POINT").data.foreach_set("vector", rest)
        mesh.vertices.foreach_set("co", rest + offset.astype(np.float32).ravel())
        mesh.update()


def main(scene_npz: str, scene_json: str, out_dir: str, offsets_npz: str | None = None) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = json.loads(Path(scene_json).read_text())
    with np.load(scene_npz) as data:
        arrays = {key: data[key] for key in data.files}
    scene = setup(settings, arrays)
    world, black = set_world(settings)
    render_beauty(scene, world, settings, out / "beauty.png")
    part_s = render_attribute(scene, black, emission_material("part"), out / "part.exr")
    position = render_attribute(scene, black, emission_material("position"), out / "position.exr")
    np.savez(out / "attributes.npz", part=np.rint(part_s[..., 0]).astype(np.int32) - 1,
             s=part_s[..., 1].astype(np.float32), position=position.astype(np.float32))
    if offsets_npz:
        with np.load(offsets_npz) as data:
            move_vertices({key.split("/")[0]: data[key] for key in data.files})
        part_s = render_attribute(scene, black, emission_material("part"), out / "moved_part.exr", 0.01)
        rest = render_attribute(scene, black, emission_material("rest"), out / "moved_rest.exr", 0.01)
        np.savez(out / "moved.npz", part=np.rint(part_s[..., 0]).astype(np.int32) - 1,
                 s=part_s[..., 1].astype(np.float32), rest=rest.astype(np.float32))


if __name__ == "__main__":
    main(*sys.argv[1:5])
