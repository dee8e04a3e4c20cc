"""Shim of comfy.model_management: CPU devices and a switchable interrupt flag."""

import torch


class InterruptProcessingException(Exception):
    pass


INTERRUPT = False


def throw_exception_if_processing_interrupted():
    global INTERRUPT
    if INTERRUPT:
        INTERRUPT = False
        raise InterruptProcessingException()


def get_torch_device():
    return torch.device("cpu")


def intermediate_device():
    return torch.device("cpu")


def unet_offload_device():
    return torch.device("cpu")


LOADED = []


def load_models_gpu(models, memory_required=0, **_):
    LOADED.extend(models)
    for patcher in models:
        patcher.model.to(patcher.load_device)
        patcher.model.device = patcher.load_device  # as ComfyUI's ModelPatcher.load does
