"""Custom socket types that flow between GID nodes, with their Python classes and shapes.

| socket               | Python object                                   | contents                         |
|----------------------|-------------------------------------------------|----------------------------------|
| GID_SPECTRAL_VOLUME  | gid_models.spectral.SpectralVolume              | coeffs (B, K, 4, H, W) pixels or normalized, T, fps |
| GID_MOTION           | gid_models.spectral.MotionTexture               | displacements (B, T, 2, H, W) pixels, fps |
| GID_MODEL            | gid_models.networks.MotionModel                 | VAE + denoiser + normalization stats |
| GID_GUIDANCE         | gid_models.sampling.LoopGuidance                | loop self-guidance settings (u, recurrence) |
| GID_RENDERER         | gid_models.rendering.NeuralRenderer             | trained softmax-splat renderer   |

ComfyUI's own types are used as ComfyUI defines them: IMAGE (B, H, W, 3) float32 in 0..1,
MASK (B, H, W) float32 in 0..1; a video is an IMAGE batch (T, H, W, 3) plus a frame rate.
"""

SPECTRAL_VOLUME = "GID_SPECTRAL_VOLUME"
MOTION = "GID_MOTION"
MODEL = "GID_MODEL"
GUIDANCE = "GID_GUIDANCE"
RENDERER = "GID_RENDERER"

IMAGE = "IMAGE"
MASK = "MASK"
