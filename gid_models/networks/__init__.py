"""Networks of the motion model: the motion VAE, the frequency-coordinated denoiser and the bundle
that ships them with their normalization statistics."""

from .denoiser import MotionDenoiser
from .frequency_attention import FrequencyAttention
from .motion_model import MotionModel
from .vae import MotionVAE

__all__ = ["FrequencyAttention", "MotionDenoiser", "MotionModel", "MotionVAE"]
