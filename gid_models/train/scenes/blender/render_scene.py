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


def surface_material(name: str) -> bpy.types.Material:
    """Principled surface coloured by the `col` attribute; foliage lets light through, ground and
    rock get a noise texture so they are not flat."""
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = nodes["Principled BSDF"]
    colour = nodes.new("ShaderNodeAttribute")
    colour.attribute_name = "col"
    base = colour.outputs["Color"]
    if name in ("ground", "rock", "distant", "wood"):
        noise = nodes.new("ShaderNodeTexNoise")
        noise.inputs["Scale"].default_value = {"ground": 0.7, "rock": 4.0, "distant": 0.05, "wood": 8.0}[name]
        noise.inputs["Detail"].default_value = 6.0
        ramp = nodes.new("ShaderNodeMapRange")
        ramp.inputs["To Min"].default_value = 0.55
        ramp.inputs["To Max"].default_value = 1.45
        links.new(noise.outputs["Fac"], ramp.inputs["Value"])
        mix = nodes.new("ShaderNodeVectorMath")
        mix.operation = "MULTIPLY"
        links.new(base, mix.inputs[0])
        links.new(ramp.outputs["Result"], mix.inputs[1])
        base = mix.outputs["Vector"]
    links.new(base, bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.85 if name != "foliage" else 0.55
    if name in ("grass", "foliage", "heads", "stems"):
        translucent = nodes.new("ShaderNodeBsdfTranslucent")
        links.new(base, translucent.inputs["Color"])
        mix_shader = nodes.new("ShaderNodeMixShader")
        mix_shader.inputs["Fac"].default_value = 0.3
        output = nodes["Material Output"]
        links.new(bsdf.outputs["BSDF"], mix_shader.inputs[1])
        links.new(translucent.outputs["BSDF"], mix_shader.inputs[2])
        links.new(mix_shader.outputs["Shader"], output.inputs["Surface"])
    return material


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
    links.new(texture.outputs["Color"], background.inputs["Color"])
    black = bpy.data.worlds.new("black")
    black.use_nodes = True
    black.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    return world, black


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
        obj.data.materials.append(surface_material(name))
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
