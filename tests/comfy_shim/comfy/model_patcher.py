"""Shim of comfy.model_patcher: holds the model and its devices."""


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        self.model = model
        if getattr(model, "device", None) is None:  # as ComfyUI's ModelPatcher does
            model.device = offload_device
        self.load_device = load_device
        self.offload_device = offload_device
