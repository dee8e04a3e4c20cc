"""ComfyUI-GID: Generative Image Dynamics as ComfyUI nodes.

ComfyUI imports this folder as a package; it reads the two mappings and WEB_DIRECTORY.
The model code lives in gid_models/ and imports no ComfyUI module.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, register_model_folder

WEB_DIRECTORY = "./web"

register_model_folder()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
