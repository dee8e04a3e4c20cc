"""ComfyUI-GID: Generative Image Dynamics as ComfyUI nodes.

ComfyUI imports this folder as a package; it reads the two mappings and WEB_DIRECTORY.
On import inside ComfyUI the pack registers its model folder (models/gid, created if missing)
and puts the example workflows' picture and clip into the input folder when they are not there.
The model code lives in gid_models/ and imports no ComfyUI module.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, register_model_folder
from .nodes._comfy import install_example_inputs

WEB_DIRECTORY = "./web"

register_model_folder()
install_example_inputs()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
