"""Per-layer width maps: how a channel-pruned student is rebuilt exactly, without pickles.

Structured pruning (``dpiqa_edge.quantize.prune``) shrinks the channel counts of convolutions,
batch norms and linear layers. A pruned model therefore no longer matches the module shapes that
``build_student(cfg)`` produces, and its safetensors cannot be loaded into a fresh build. Instead of
pickling the pruned module tree, the student's ``config.json`` carries ``widths``: module name ->
weight shape for every conv / batch-norm / linear layer. ``load_student`` builds the fresh model,
calls :func:`apply_widths` to resize those modules to the recorded shapes (empty parameters of the
right size), then loads the weights with ``strict=True`` - so a wrong map fails loudly.

Group convolutions: torch-pruning keeps depthwise convolutions depthwise (groups follows the channel
count) and prunes grouped convolutions inside each group (groups unchanged). :func:`apply_widths`
follows the same rule, so the weight shape alone fixes every attribute.
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelLoadError


def _resizable_types():
    import torch.nn as nn

    return (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
            nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.Linear)


def _shape_of(module) -> list[int] | None:
    w = getattr(module, "weight", None)
    if w is not None:
        return [int(s) for s in w.shape]
    rm = getattr(module, "running_mean", None)  # BatchNorm without affine parameters
    return [int(rm.shape[0])] if rm is not None else None


def record_widths(model, reference=None) -> dict[str, list[int]]:
    """Module name -> weight shape of every conv / batch-norm / linear layer of ``model``.

    ``reference``: a freshly built model of the same config; when given, only the layers whose shape
    differs from it are recorded (a smaller map; the rebuild is the same).
    """
    ref_shapes = {}
    if reference is not None:
        ref_shapes = {n: _shape_of(m) for n, m in reference.named_modules() if isinstance(m, _resizable_types())}
    widths: dict[str, list[int]] = {}
    for name, module in model.named_modules():
        if not isinstance(module, _resizable_types()):
            continue
        shape = _shape_of(module)
        if shape is None or (reference is not None and ref_shapes.get(name) == shape):
            continue
        widths[name] = shape
    return widths


def apply_widths(model, widths: dict[str, Any]):
    """Resize ``model``'s modules in place to the shapes in ``widths`` (from :func:`record_widths`).

    Parameters are replaced by uninitialised tensors of the recorded shape: load the pruned state
    dict right after. Raises :class:`ModelLoadError` for a name that is not in the model, a module of
    a kind that cannot be resized, or a shape of the wrong rank. Returns ``model``.
    """
    import torch.nn as nn

    for name, shape in sorted(widths.items()):
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise ModelLoadError(f"widths: module {name!r} is not in the built model (config and widths disagree)") from None
        if not isinstance(module, _resizable_types()):
            raise ModelLoadError(f"widths: module {name!r} is a {type(module).__name__}, which widths cannot resize")
        shape = [int(s) for s in shape]
        old = _shape_of(module)
        if old is not None and len(old) != len(shape):
            raise ModelLoadError(f"widths: module {name!r} has a rank-{len(old)} weight, the map says {shape}")
        if isinstance(module, nn.modules.conv._ConvNd):
            _resize_conv(module, shape)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            _resize_bn(module, shape[0])
        else:
            _resize_linear(module, shape)
    return model


def _new_param(old, shape):
    import torch
    import torch.nn as nn

    if old is None:
        return None
    return nn.Parameter(torch.empty(shape, dtype=old.dtype, device=old.device), requires_grad=old.requires_grad)


def _resize_conv(conv, shape: list[int]) -> None:
    # Conv weight: (out, in/groups, *k); ConvTranspose weight: (in, out/groups, *k).
    depthwise = conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels
    if conv.transposed:
        in_ch = shape[0]
        groups = in_ch if depthwise else conv.groups
        out_ch = shape[1] * groups
    else:
        out_ch = shape[0]
        groups = out_ch if depthwise else conv.groups
        in_ch = shape[1] * groups
    conv.in_channels, conv.out_channels, conv.groups = in_ch, out_ch, groups
    conv.weight = _new_param(conv.weight, shape)
    if conv.bias is not None:
        conv.bias = _new_param(conv.bias, [out_ch])


def _resize_bn(bn, n: int) -> None:
    import torch

    bn.num_features = n
    if bn.weight is not None:
        bn.weight = _new_param(bn.weight, [n])
        bn.bias = _new_param(bn.bias, [n])
    if bn.running_mean is not None:
        bn.running_mean = torch.zeros(n, dtype=bn.running_mean.dtype)
        bn.running_var = torch.ones(n, dtype=bn.running_var.dtype)


def _resize_linear(lin, shape: list[int]) -> None:
    lin.out_features, lin.in_features = shape
    lin.weight = _new_param(lin.weight, shape)
    if lin.bias is not None:
        lin.bias = _new_param(lin.bias, [shape[0]])
