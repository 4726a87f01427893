"""Reading the authors' whole-module pickles without trusting them.

``torch.save(model)`` of a whole module writes a pickle that names every class of the module tree by its
import path (``iqa_models.student.StudentEfficientNet``, ``torchvision.ops.misc.Conv2dNormActivation``,
``diffusers.models.unet_2d_blocks.CrossAttnDownBlock2D`` ...). Plain unpickling would import those modules
and let the file call anything it names. Here the file goes through torch's ``weights_only`` unpickler
(never ``weights_only=False``) with :data:`ALLOWLIST`: the exact globals the DP-IQA authors' student and
teacher are made of, each mapped to an inert stand-in of ours, never to the named class:

* every ``nn.Module`` class -> :class:`Stand-in <PickledModule>` (an empty ``nn.Module``: the pickled
  parameters, buffers and children land in it, ``state_dict()`` reads them, its ``forward`` refuses);
  the authors' own classes get named subclasses so the root's kind is known;
* non-module objects the modules carry (the CLIP tokenizer and its parts, attention processors) ->
  :class:`PickledObject`, which keeps nothing; diffusers' ``FrozenDict`` config -> ``OrderedDict``;
* functions the pickle calls to rebuild such objects (``regex._regex.compile``) -> :func:`_inert`,
  which returns a :class:`PickledObject` and runs nothing.

So no code from the file, its authors or the libraries it names runs: only torch's tensor rebuilders and
the stand-ins above. Any other global (``os.system``, ``builtins.exec``, a class of another model) stops
the load with one line naming it. The names cover the authors' stack (diffusers 0.24, transformers
4.31, tokenizers 0.13, torchvision) and today's module paths of the same classes (diffusers 0.42,
transformers 5), checked by listing the globals of replicas pickled under both.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path

from torch import nn

from ..errors import ModelLoadError
from .archive import check_zip_budget


class RefusedPickle(ModelLoadError):
    """A stand-in was given what the real class never is (constructor arguments, hooks, a foreign value)."""


#: the hook tables every ``nn.Module`` pickles; a saved model's are empty, so anything in them is refused
#: (``state_dict()`` would call a hook the file put there)
_HOOK_TABLES = ("_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
                "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
                "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                "_load_state_dict_post_hooks")


def _plain(value, depth: int = 0) -> bool:
    """Data a module attribute may hold: numbers, text, None, tensors, stand-ins and containers of them;
    never anything callable (a function or class from the file)."""
    import torch

    if depth > 32:
        return False
    if value is None or value is _inert or isinstance(value, (bool, int, float, complex, str, bytes, torch.Tensor,
                                                               torch.dtype, torch.device, PickledModule, PickledObject)):
        return True  # _inert: our own stand-in for a function the file names (ftfy.fix_text), never called
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _check_module_state(cls: type, state) -> dict:
    """What ``torch.save`` of a real module stores as its state (its ``__dict__``), checked field by field."""
    import torch

    name = cls.__name__
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise RefusedPickle(f"a {name} state that is not a dict of attribute names")
    for key in _HOOK_TABLES:
        if state.get(key):
            raise RefusedPickle(f"a {name} whose {key} is not empty (a saved model holds no hooks)")
    tables = {"_parameters": (torch.Tensor,), "_buffers": (torch.Tensor,), "_modules": (PickledModule,)}
    for key, kinds in tables.items():
        table = state.get(key, {})
        if not isinstance(table, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, kinds))
                                                  for k, v in table.items()):
            raise RefusedPickle(f"a {name} whose {key} is not a table of {kinds[0].__name__}s")
    if not isinstance(state.get("training", False), bool):
        raise RefusedPickle(f"a {name} whose training flag is not a bool")
    for key, value in state.items():
        if key not in tables and not _plain(value):
            raise RefusedPickle(f"a {name} whose {key} is a {type(value).__name__}, not data")
    return state


class PickledModule(nn.Module):
    """Inert stand-in for a pickled module: holds what the pickle stored, runs nothing of it.

    It is built only the way the unpickler rebuilds a real module (``__new__`` with no arguments, then its
    ``__dict__`` as state): constructor arguments (a REDUCE) or state holding hooks, foreign tables or
    callables are a :class:`RefusedPickle`."""

    def __new__(cls, *args, **kwargs):
        if args or kwargs:
            raise RefusedPickle(f"{cls.__name__} built with arguments; a saved module is rebuilt without any")
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise RefusedPickle(f"{type(self).__name__} built with arguments; a saved module is rebuilt without any")
        super().__init__()

    def __setstate__(self, state):
        super().__setstate__(_check_module_state(type(self), state))

    def forward(self, *args, **kwargs):
        raise RuntimeError("a module read from an untrusted pickle is data only; map its weights onto a dpiqa model")


class AuthorsStudent(PickledModule):
    """Stand-in for ``iqa_models.student.StudentEfficientNet``."""


class AuthorsTeacher(PickledModule):
    """Stand-in for ``iqa_models.dpiqa.DPIQA``."""


class PickledObject:
    """Inert stand-in for a non-module object (tokenizer, attention processor): accepts and drops its state."""

    def __new__(cls, *args, **kwargs):
        if not _plain(args) or not _plain(kwargs):
            raise RefusedPickle(f"{cls.__name__} built from something that is not data")
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        if not _plain(state):
            raise RefusedPickle(f"{type(self).__name__} state that is not data")


def _inert(*args, **kwargs):
    """Stand-in for a rebuild function the pickle calls (e.g. compiling a regex): returns an inert object.
    Its arguments must be data (a pattern, flags): nothing they name is called."""
    if not _plain(args) or not _plain(kwargs):
        raise RefusedPickle("a rebuild function called with something that is not data")
    return PickledObject()


_TORCH_NN = {
    "activation": ("GELU", "ReLU", "SiLU", "Sigmoid", "Softmax"),
    "batchnorm": ("BatchNorm2d",), "container": ("ModuleList", "Sequential"),
    "conv": ("Conv2d", "ConvTranspose2d"), "dropout": ("Dropout",), "flatten": ("Flatten",),
    "linear": ("Identity", "Linear"), "normalization": ("GroupNorm", "LayerNorm"),
    "pixelshuffle": ("PixelUnshuffle",), "pooling": ("AdaptiveAvgPool2d", "AvgPool2d"),
}
_TORCHVISION = ("torchvision.models.efficientnet.EfficientNet", "torchvision.models.efficientnet.MBConv",
                "torchvision.ops.misc.Conv2dNormActivation", "torchvision.ops.misc.SqueezeExcitation",
                "torchvision.ops.stochastic_depth.StochasticDepth")
#: diffusers module classes of SD-1.5's VAE and UNet and the T2I full adapter: (0.24 path, today's path)
_DIFFUSERS = (
    ("models.autoencoder_kl.AutoencoderKL", "models.autoencoders.autoencoder_kl.AutoencoderKL"),
    ("models.vae.Encoder", "models.autoencoders.vae.Encoder"),
    ("models.vae.Decoder", "models.autoencoders.vae.Decoder"),
    ("models.unet_2d_condition.UNet2DConditionModel", "models.unets.unet_2d_condition.UNet2DConditionModel"),
    ("models.resnet.Downsample2D", "models.downsampling.Downsample2D"),
    ("models.resnet.Upsample2D", "models.upsampling.Upsample2D"),
    ("models.resnet.ResnetBlock2D", "models.resnet.ResnetBlock2D"),
    ("models.transformer_2d.Transformer2DModel", "models.transformers.transformer_2d.Transformer2DModel"),
    ("models.lora.LoRACompatibleConv", "models.lora.LoRACompatibleConv"),
    ("models.lora.LoRACompatibleLinear", "models.lora.LoRACompatibleLinear"),
    ("models.attention.BasicTransformerBlock", "models.attention.BasicTransformerBlock"),
    ("models.attention.FeedForward", "models.attention.FeedForward"),
    ("models.activations.GEGLU", "models.activations.GEGLU"),
    ("models.attention_processor.Attention", "models.attention_processor.Attention"),
    ("models.embeddings.TimestepEmbedding", "models.embeddings.TimestepEmbedding"),
    ("models.embeddings.Timesteps", "models.embeddings.Timesteps"),
    ("models.adapter.FullAdapter", "models.adapter.FullAdapter"),
    ("models.adapter.AdapterBlock", "models.adapter.AdapterBlock"),
    ("models.adapter.AdapterResnetBlock", "models.adapter.AdapterResnetBlock"),
) + tuple((f"models.unet_2d_blocks.{n}", f"models.unets.unet_2d_blocks.{n}") for n in (
    "CrossAttnDownBlock2D", "CrossAttnUpBlock2D", "DownBlock2D", "UpBlock2D", "UNetMidBlock2DCrossAttn",
    "DownEncoderBlock2D", "UpDecoderBlock2D", "UNetMidBlock2D"))
#: non-module objects inside the teacher: attention processors, the CLIP tokenizer and its parts
_OBJECTS = ("diffusers.models.attention_processor.AttnProcessor2_0",
            "diffusers.models.attention_processor.AttnProcessor",
            "transformers.models.clip.tokenization_clip.CLIPTokenizer",
            "transformers.models.clip.tokenization_clip.BasicTokenizer",
            "transformers.tokenization_utils.Trie", "tokenizers.AddedToken", "tokenizers.Tokenizer",
            "tokenizers.models.Model")
#: functions the pickle calls to rebuild such objects (never run: :func:`_inert` stands in), or holds as
#: attributes (the tokenizer keeps ``ftfy.fix_text`` when ftfy is installed, as the authors' requirements do)
_FUNCTIONS = ("regex._regex.compile", "re._compile", "ftfy.fix_text")

_AUTHORS = {"iqa_models.student.StudentEfficientNet": AuthorsStudent, "iqa_models.dpiqa.DPIQA": AuthorsTeacher,
            **{f"iqa_models.dpiqa.{n}": PickledModule for n in ("UNet", "TextAdapter", "SELayer", "QualityFeatureDecoder")}}


def _allowlist() -> dict[str, object]:
    table: dict[str, object] = dict(_AUTHORS)
    for module, names in _TORCH_NN.items():
        table.update({f"torch.nn.modules.{module}.{n}": PickledModule for n in names})
    table.update({n: PickledModule for n in _TORCHVISION})
    table.update({f"diffusers.{p}": PickledModule for pair in _DIFFUSERS for p in pair})
    table.update({n: PickledObject for n in _OBJECTS})
    table.update({n: _inert for n in _FUNCTIONS})
    table["diffusers.configuration_utils.FrozenDict"] = OrderedDict
    return table


ALLOWLIST: dict[str, object] = _allowlist()

_REFUSED = re.compile(r"GLOBAL (\S+?)(?: was not an allowed| whose module)")


def load_untrusted(path: str | os.PathLike):
    """Whatever the torch pickle at ``path`` holds (a state dict, or a module tree of stand-ins), read with
    ``weights_only=True`` and :data:`ALLOWLIST`; a refused global is a one-line :class:`ModelLoadError`."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: file not found")
    check_zip_budget(path)
    safe = [(obj, name) for name, obj in ALLOWLIST.items()]
    try:
        with torch.serialization.safe_globals(safe):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except RefusedPickle as exc:
        raise ModelLoadError(f"{path}: refused: {exc}; nothing in it was run") from None
    except pickle.UnpicklingError as exc:
        found = _REFUSED.search(str(exc))
        if found:
            name = found.group(1) if "." in found.group(1) else f"builtins.{found.group(1)}"  # torch drops "builtins."
            raise ModelLoadError(f"{path}: refused: the pickle names {name}, which is not one of the "
                                 f"{len(ALLOWLIST)} classes DP-IQA's released models are made of; nothing in it was run") from None
        raise ModelLoadError(f"{path}: refused: not a plain DP-IQA checkpoint "
                             f"({' '.join(str(exc).split())[:160]}); nothing in it was run") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable torch checkpoint ({' '.join(str(exc).split())[:160]})") from None


def module_state(root) -> dict:
    """``state_dict()`` of a stand-in tree, as plain float tensors on the CPU."""
    return {k: v.detach() for k, v in root.state_dict().items()}
