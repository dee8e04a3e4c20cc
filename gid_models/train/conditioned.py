"""Training the picture-conditioned denoiser of motion model v2 (issue 17).

The conditioned denoiser (`MotionDenoiser(image_features="efficientnet-lite0")`, see
networks/image_conditioning.py) is the v1 U-Net plus zero-initialised layers that read frozen
EfficientNet-Lite0 features of the picture. Fine-tuning it from a trained v1 denoiser:
- `with_image_conditioning` builds the conditioned network around the v1 weights (the new layers
  stay at zero, so step 0 predicts exactly what v1 predicts);
- `optimizer_groups` gives the new layers a higher learning rate than the pretrained ones, which
  only need to adapt;
- `picture_features` computes the frozen encoder's features of a training picture once (the
  latent cache stores them), and `use_cached_features` hands a batch of them to the network for
  the current step, zeroed where the condition was dropped, exactly as the encoder answers the
  all-zero picture of the sampler's empty guidance pass.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..networks.denoiser import MotionDenoiser
from ..networks.image_conditioning import ENCODERS, INJECTIONS
from ..networks.image_encoder import ImageFeatures

LOGGER = logging.getLogger(__name__)

NEW_LAYERS = "image_conditioning."  # state-dict prefix of the layers the v2 conditioning adds


def with_image_conditioning(denoiser: MotionDenoiser, encoder: str, injection: str) -> MotionDenoiser:
    """A copy of `denoiser` with picture conditioning (encoder, injection "film" or "add") and every
    existing weight kept; the denoiser itself if it already has exactly that conditioning."""
    if encoder not in ENCODERS:
        raise ValueError(f"--image-features must be one of {ENCODERS}, got {encoder!r}.")
    if injection not in INJECTIONS:
        raise ValueError(f"--image-feature-injection must be one of {INJECTIONS}, got {injection!r}.")
    config = dict(denoiser.config)
    if config.get("image_features") is not None:
        if (config["image_features"], config["image_feature_injection"]) != (encoder, injection):
            raise ValueError(
                f"the denoiser is already conditioned with {config['image_features']} / "
                f"{config['image_feature_injection']}; train it with those settings or start from a v1 model.")
        return denoiser
    config = {key: value for key, value in config.items() if not key.startswith("_")}
    config.update(image_features=encoder, image_feature_injection=injection)
    conditioned = MotionDenoiser(**config)
    missing, unexpected = conditioned.load_state_dict(denoiser.state_dict(), strict=False)
    if unexpected or any(not name.startswith(NEW_LAYERS) for name in missing):
        raise ValueError(f"could not carry the denoiser's weights over: missing {missing}, unexpected {unexpected}.")
    LOGGER.info("added %s picture conditioning (%s); %d new tensors start at their initial values",
                encoder, injection, len(missing))
    return conditioned.to(next(denoiser.parameters()).device)


def optimizer_groups(denoiser: nn.Module, learning_rate: float, new_layer_scale: float) -> list[dict]:
    """AdamW parameter groups of the trainable weights: the picture conditioning's at
    learning_rate * new_layer_scale, all others at learning_rate (empty groups left out)."""
    named = [(name, p) for name, p in denoiser.named_parameters() if p.requires_grad]
    new = [p for name, p in named if name.startswith(NEW_LAYERS)]
    old = [p for name, p in named if not name.startswith(NEW_LAYERS)]
    groups = [{"params": old, "lr": learning_rate}]
    if new:
        groups.append({"params": new, "lr": learning_rate * new_layer_scale})
    return [group for group in groups if group["params"]]


def picture_features(denoiser: MotionDenoiser, image: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
    """Frozen-encoder features of one picture (3, H, W) 0..1: (C_s, H / s, W / s) for s = 8, 16, 32
    on the CPU; None when the denoiser is not picture-conditioned."""
    conditioning = denoiser.image_conditioning
    if conditioning is None:
        return None
    device = next(denoiser.parameters()).device
    condition = image[None].float().to(device) * 2 - 1
    return tuple(f[0].cpu() for f in conditioning.encode(condition))


def use_cached_features(denoiser: MotionDenoiser, condition: torch.Tensor, features: list[torch.Tensor],
                        keep: torch.Tensor) -> None:
    """Make the next forward pass with `condition` (B, 3, H, W) use the cached features (per map
    (B, C_s, h_s, w_s)) instead of running the encoder; keep (B,) bool zeroes the dropped examples'."""
    mask = keep.view(-1, 1, 1, 1).to(condition.device)
    kept = ImageFeatures(*(f.float().to(condition.device) * mask for f in features))
    denoiser.image_conditioning.remember(condition, kept)
