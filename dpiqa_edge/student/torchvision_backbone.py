"""The paper student's backbone: a torchvision EfficientNet laid out as the DP-IQA authors' student holds it.

The authors take ``torchvision.models.efficientnet_b7`` and replace ``avgpool`` and ``classifier`` by
``nn.Identity`` (no parameters left in either), then read the 2560 x 16 x 16 map (at 512 px). Keeping the
very same module tree means their state dict's ``base_model.*`` keys are this model's keys.

ImageNet weights, never through a pickle we did not write without ``weights_only=True``:

* ``pretrained=True``: torchvision's own ``IMAGENET1K_V1`` file for the variant, fetched into (or read
  from) torch hub's standard cache by ``torch.hub.load_state_dict_from_url`` with ``weights_only=True``
  and its hash checked;
* ``weights``: a local ``.safetensors`` (or ``.pth``, read with ``weights_only=True``) or a Hugging Face id
  ``org/name[:file]`` (``dpiqa_edge.hub``), holding a torchvision EfficientNet state dict (with or
  without its ``classifier``; keys may carry a ``features.``-level prefix such as ``base_model.``).
"""

from __future__ import annotations

from ..errors import ConfigError, ModelLoadError
from ..hub import resolve_file


def efficientnet(variant: str, pretrained: bool = False, weights: str | None = None):
    """``(torchvision EfficientNet with Identity pooling/classifier, channels of its last map)``."""
    from torch import nn
    from torchvision import models

    if variant not in {f"b{i}" for i in range(8)}:
        raise ConfigError(f"student paper: unknown variant {variant!r}; valid: b0..b7")
    net = getattr(models, f"efficientnet_{variant}")(weights=None)
    channels = net.classifier[1].in_features
    state = None
    if weights:
        state = _read_weights(weights)
    elif pretrained:
        state = _torchvision_imagenet(variant)
    if state is not None:
        _load_backbone(net, state, str(weights or f"torchvision efficientnet_{variant} IMAGENET1K_V1"))
    net.avgpool, net.classifier = nn.Identity(), nn.Identity()
    return net, channels


def _torchvision_imagenet(variant: str) -> dict:
    import torch
    from torchvision import models

    url = models.get_model_weights(f"efficientnet_{variant}").IMAGENET1K_V1.url
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", check_hash=True, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - offline, hash mismatch, refused pickle: one line
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ModelLoadError(f"{url}: torchvision ImageNet weights unavailable ({reason}); put the file in "
                             f"torch hub's cache ({torch.hub.get_dir()}/checkpoints) or give weights=FILE") from None


def _read_weights(spec: str) -> dict:
    import torch

    path = resolve_file(spec, "paper student weights", ("*.safetensors",))
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated file, refused pickle global
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ModelLoadError(f"{path}: cannot read backbone weights (weights_only; {reason})") from None
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def _load_backbone(net, state: dict, source: str) -> None:
    """Load ``state`` into ``net.features`` strictly (the classifier, if present, is not used)."""
    prefixes = {k[: k.index("features.")] for k in state if "features." in k}
    if len(prefixes) != 1:
        raise ModelLoadError(f"{source}: not a torchvision EfficientNet state dict (no unique 'features.' keys)")
    (prefix,) = prefixes
    features = {k[len(prefix) + len("features."):]: v for k, v in state.items() if k.startswith(prefix + "features.")}
    try:
        net.features.load_state_dict(features, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{source}: weights do not fit this EfficientNet ({' '.join(str(exc).split())[:200]})") from None
