"""What a workflow may say about each node: its inputs (sockets and widgets), outputs and widgets.

GID nodes are described from their real INPUT_TYPES / RETURN_TYPES. The ComfyUI and
VideoHelperSuite nodes the examples use are described by HOST_INPUT_TYPES below, written from the
vendored ComfyUI 0.3.64 and VideoHelperSuite 1.7.9 sources (comfy_extras/nodes_video.py,
comfy_extras/nodes_images.py, nodes.py, videohelpersuite/nodes.py, video_formats/*.json); the
real-server test compares them with that server's /object_info, so they cannot drift unnoticed.

How the frontend (comfyui-frontend-package 1.27) lays out a node's widgets, which the UI form's
`widgets_values` follows:
- every INT/FLOAT/BOOLEAN/STRING input (without forceInput) and every combo is a widget, in
  INPUT_TYPES order, required before optional;
- an INT with control_after_generate (or named seed / noise_seed) is followed by its control
  widget ("fixed", "increment", "decrement", "randomize");
- a combo with image_upload / video_upload is followed by its upload button, saved as "image";
- a widget whose input is linked keeps its value in widgets_values and also gets an entry in the
  node's `inputs` with {"widget": {"name": ...}}.
VideoHelperSuite nodes save `widgets_values` as an object keyed by widget name instead
(VHS.core.js, useKVState), including the extra widgets of the chosen video format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WIDGET_TYPES = ("INT", "FLOAT", "BOOLEAN", "STRING")
COMBO = "COMBO"
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
UPLOAD_OPTIONS = ("image_upload", "video_upload")
UPLOAD_VALUE = "image"
SEED_NAMES = ("seed", "noise_seed")
# Nodes that live only in the frontend: in the UI form, never in the API form.
FRONTEND_ONLY_NODES = {"Note": "STRING", "MarkdownNote": "STRING"}
VHS_PREVIEW_WIDGET = "videopreview"

# Inputs whose combo lists the files in ComfyUI's input folder: checked against the example assets.
INPUT_FILE_COMBOS = {("LoadImage", "image"), ("LoadVideo", "file")}
# VideoHelperSuite's video_formats/*.json, as its get_video_formats() lists them when ffmpeg is
# found and gifski is not (gifski.json is then skipped), and each format's extra widgets.
VHS_FORMATS = [
    "image/gif", "image/webp", "video/16bit-png", "video/8bit-png", "video/ProRes", "video/av1-webm",
    "video/ffmpeg-gif", "video/ffv1-mkv", "video/h264-mp4", "video/h265-mp4", "video/nvenc_av1-mp4",
    "video/nvenc_h264-mp4", "video/nvenc_hevc-mp4", "video/webm",
]  # fmt: skip
VHS_FORMAT_WIDGETS = {
    "video/h264-mp4": {
        "pix_fmt": (["yuv420p", "yuv420p10le"], {}),
        "crf": ("INT", {"default": 19, "min": 0, "max": 100, "step": 1}),
        "save_metadata": ("BOOLEAN", {"default": True}),
        "trim_to_audio": ("BOOLEAN", {"default": False}),
    },
    "image/webp": {"lossless": ("BOOLEAN", {"default": True})},
}

HOST_INPUT_TYPES: dict[str, dict[str, Any]] = {
    "LoadImage": {
        "display_name": "Load Image",
        "input": {"required": {"image": ([], {"image_upload": True})}},
        "output": [("IMAGE", "IMAGE"), ("MASK", "MASK")],
    },
    "ImageFromBatch": {
        "display_name": "ImageFromBatch",
        "input": {"required": {
            "image": ("IMAGE",),
            "batch_index": ("INT", {"default": 0, "min": 0, "max": 4095}),
            "length": ("INT", {"default": 1, "min": 1, "max": 4096}),
        }},
        "output": [("IMAGE", "IMAGE")],
    },
    "LoadVideo": {
        "display_name": "Load Video",
        "input": {"required": {"file": ([], {"video_upload": True})}},
        "output": [("VIDEO", "VIDEO")],
    },
    "GetVideoComponents": {
        "display_name": "Get Video Components",
        "input": {"required": {"video": ("VIDEO",)}},
        "output": [("images", "IMAGE"), ("audio", "AUDIO"), ("fps", "FLOAT")],
    },
    "CreateVideo": {
        "display_name": "Create Video",
        "input": {
            "required": {
                "images": ("IMAGE",),
                "fps": ("FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0, "step": 1.0}),
            },
            "optional": {"audio": ("AUDIO",)},
        },
        "output": [("VIDEO", "VIDEO")],
    },
    "SaveVideo": {
        "display_name": "Save Video",
        "input": {"required": {
            "video": ("VIDEO",),
            "filename_prefix": ("STRING", {"default": "video/ComfyUI"}),
            "format": (["auto", "mp4"], {"default": "auto"}),
            "codec": (["auto", "h264"], {"default": "auto"}),
        }},
        "output": [],
        "output_node": True,
    },
    # images and frame_rate are VHS MultiInputs (IMAGE or LATENT, FLOAT or INT) in Python, but the
    # frontend only sees the first type, so a link must carry that one.
    "VHS_VideoCombine": {
        "display_name": "Video Combine 🎥🅥🅗🅢",
        "input": {
            "required": {
                "images": ("IMAGE",),
                "frame_rate": ("FLOAT", {"default": 8, "min": 1, "step": 1}),
                "loop_count": ("INT", {"default": 0, "min": 0, "max": 100, "step": 1}),
                "filename_prefix": ("STRING", {"default": "AnimateDiff"}),
                "format": (VHS_FORMATS,),
                "pingpong": ("BOOLEAN", {"default": False}),
                "save_output": ("BOOLEAN", {"default": True}),
            },
            "optional": {"audio": ("AUDIO",), "meta_batch": ("VHS_BatchManager",), "vae": ("VAE",)},
        },
        "output": [("Filenames", "VHS_FILENAMES")],
        "output_node": True,
        "key_value_widgets": True,
        "format_widgets": VHS_FORMAT_WIDGETS,
    },
}


@dataclass(frozen=True)
class InputSpec:
    """One declared input. kind: INT, FLOAT, BOOLEAN, STRING, COMBO (choices) or a socket type."""

    name: str
    kind: str
    options: dict = field(default_factory=dict)
    choices: tuple | None = None
    optional: bool = False

    @property
    def is_widget(self) -> bool:
        if self.kind == COMBO:
            return True
        return self.kind in WIDGET_TYPES and not self.options.get("forceInput", False)

    @property
    def has_control(self) -> bool:
        """The frontend adds a control_after_generate widget right after this one."""
        if self.kind == COMBO:
            return bool(self.options.get("control_after_generate"))
        return self.kind == "INT" and bool(self.options.get("control_after_generate", self.name in SEED_NAMES))

    @property
    def has_upload(self) -> bool:
        return self.kind == COMBO and any(self.options.get(key) for key in UPLOAD_OPTIONS)

    def ui_widget_names(self) -> list[str]:
        """Names of the frontend widgets this input makes, in widgets_values order."""
        names = [self.name]
        if self.has_control:
            names.append("control_after_generate")
        if self.has_upload:
            names.append("upload")
        return names


def parse_input(name: str, declaration: tuple, optional: bool) -> InputSpec:
    """An INPUT_TYPES entry ((type, options) or ([choices], options)) as an InputSpec."""
    kind = declaration[0]
    options = dict(declaration[1]) if len(declaration) > 1 and isinstance(declaration[1], dict) else {}
    if isinstance(kind, (list, tuple)):
        return InputSpec(name, COMBO, options, tuple(kind), optional)
    if kind == COMBO:  # a combo declared the V3 way
        return InputSpec(name, COMBO, options, tuple(options.get("options", ())), optional)
    return InputSpec(name, str(kind), options, None, optional)


@dataclass(frozen=True)
class NodeSpec:
    """Everything the workflow checker and the UI-to-API conversion need to know about one node type."""

    type: str
    display_name: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[tuple[str, str], ...]  # (name, type) per output slot
    output_node: bool = False
    key_value_widgets: bool = False  # widgets_values saved as {name: value} (VideoHelperSuite)
    format_widgets: dict = field(default_factory=dict)  # format -> {name: InputSpec}

    def input(self, name: str) -> InputSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    @property
    def sockets(self) -> list[InputSpec]:
        return [spec for spec in self.inputs if not spec.is_widget]

    @property
    def widgets(self) -> list[InputSpec]:
        return [spec for spec in self.inputs if spec.is_widget]

    def extra_widgets(self, values: dict) -> dict[str, InputSpec]:
        """Widgets added by the chosen video format (VHS_VideoCombine), keyed by name."""
        return self.format_widgets.get(values.get("format"), {})

    def output_slot(self, name: str) -> int:
        names = [output_name for output_name, _ in self.outputs]
        if name not in names:
            raise KeyError(f"{self.type} has no output {name!r}; it has {names}")
        return names.index(name)


def _inputs_of(input_types: dict) -> tuple[InputSpec, ...]:
    parsed = []
    for section, optional in (("required", False), ("optional", True)):
        for name, declaration in (input_types.get(section) or {}).items():
            parsed.append(parse_input(name, declaration, optional))
    return tuple(parsed)


def spec_from_class(type_name: str, node_class: type, display_name: str | None = None) -> NodeSpec:
    """NodeSpec of a classic node class (INPUT_TYPES, RETURN_TYPES, RETURN_NAMES)."""
    return_types = tuple(node_class.RETURN_TYPES)
    return_names = tuple(getattr(node_class, "RETURN_NAMES", None) or return_types)
    return NodeSpec(
        type=type_name,
        display_name=display_name or type_name,
        inputs=_inputs_of(node_class.INPUT_TYPES()),
        outputs=tuple(zip(return_names, return_types)),
        output_node=bool(getattr(node_class, "OUTPUT_NODE", False)),
    )


def host_spec(type_name: str) -> NodeSpec:
    declared = HOST_INPUT_TYPES[type_name]
    format_widgets = {
        fmt: {name: parse_input(name, declaration, True) for name, declaration in widgets.items()}
        for fmt, widgets in declared.get("format_widgets", {}).items()
    }
    return NodeSpec(
        type=type_name,
        display_name=declared["display_name"],
        inputs=_inputs_of(declared["input"]),
        outputs=tuple(declared["output"]),
        output_node=declared.get("output_node", False),
        key_value_widgets=declared.get("key_value_widgets", False),
        format_widgets=format_widgets,
    )


def node_specs(node_class_mappings: dict[str, type], display_names: dict[str, str] | None = None) -> dict[str, NodeSpec]:
    """Specs of every GID node (from the pack's classes) and every host node the examples use."""
    specs = {name: host_spec(name) for name in HOST_INPUT_TYPES}
    names = display_names or {}
    specs.update({name: spec_from_class(name, cls, names.get(name)) for name, cls in node_class_mappings.items()})
    return specs


def types_match(output_type: str, input_type: str) -> bool:
    """Whether the frontend lets a link of output_type into an input of input_type
    ("*" matches anything; comma-separated lists match any member)."""
    if "*" in (output_type, input_type):
        return True
    outputs = {part.strip() for part in output_type.split(",")}
    inputs = {part.strip() for part in input_type.split(",")}
    return bool(outputs & inputs)
