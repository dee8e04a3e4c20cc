"""Generative Image Dynamics in pure PyTorch: spectral volumes, motion diffusion, softmax-splat
rendering and modal simulation. Importable without ComfyUI."""

__version__ = "0.1.0"
