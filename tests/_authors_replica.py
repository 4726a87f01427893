"""Replicas of the DP-IQA authors' released models, for tests: same module tree, same class paths.

The authors' whole-module pickles name their classes by module path (``iqa_models.student.
StudentEfficientNet``, ``iqa_models.dpiqa.DPIQA`` ...), so a faithful replica must live at that path:
:func:`install` writes an ``iqa_models`` package into a folder and puts it on ``sys.path``. The code
below is written from the published description of their modules (attribute names, layer shapes, what
each forward computes), not copied; sizes are parameters so tests can build tiny replicas.

Student (``iqa_models/student.py``): ``base_model`` = a torchvision EfficientNet with Identity avgpool and
classifier; ``conv_transpose`` (C -> 8, k3 s2 p1 op1), ReLU, nearest resize to m x m; ``flatten``, ``fc1``
8*m*m -> hidden, ``fc2``, ``fc3`` -> 1; forward returns ``(score N x 1, feature_map)``.

Teacher (``iqa_models/dpiqa.py``): ``DPIQA`` holds ``vae`` (AutoencoderKL), ``unet`` (a
UNet2DConditionModel subclass returning the four up-block outputs), ``tokenizer`` (CLIPTokenizer),
``class_embeddings`` (a plain tensor attribute), ``gamma``, ``text_adapter`` (``fc`` = Linear-GELU-Linear),
``img_adapter`` (diffusers FullAdapter) and ``QFD``: conv1..4 + se1..4 (SE with bias-free linears, no
ReLU between conv and SE), fuse_conv + se_fuse, an unused ``bnc1``/``dropout``/``softm``/``classifier_dist``,
conv_score1..3 (ReLU each) and fc1..3. Its VAE input is the [0,1] image; its latent is a *sample*.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

STUDENT_SRC = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torchvision import models


    class StudentEfficientNet(nn.Module):
        def __init__(self, variant="efficientnet_b7", map_size=64, hidden=512):
            super().__init__()
            self.base_model = getattr(models, variant)(weights=None)
            channels = self.base_model.classifier[1].in_features
            self.base_model.classifier = nn.Identity()
            self.base_model.avgpool = nn.Identity()
            self.conv_transpose = nn.ConvTranspose2d(channels, 8, kernel_size=3, stride=2, padding=1, output_padding=1)
            self.flatten = nn.Flatten()
            self.fc1 = nn.Linear(8 * map_size * map_size, hidden)
            self.fc2 = nn.Linear(hidden, hidden)
            self.fc3 = nn.Linear(hidden, 1)
            self.channels, self.map_size = channels, map_size

        def forward(self, x):
            flat = self.base_model(x)                      # N x (C * g * g): pooling and classifier are Identity
            grid = x.shape[-1] // 32
            fmap = flat.view(x.shape[0], self.channels, grid, grid)
            fmap = torch.relu(self.conv_transpose(fmap))
            fmap = F.interpolate(fmap, size=(self.map_size, self.map_size), mode="nearest")
            h = torch.relu(self.fc1(self.flatten(fmap)))
            h = torch.relu(self.fc2(h))
            return self.fc3(h), fmap
''')

DPIQA_SRC = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.models.adapter import FullAdapter


    class UNet(UNet2DConditionModel):
        """Returns the four up-block outputs (coarsest first) instead of the denoised sample."""

        def forward(self, sample, timestep, encoder_hidden_states, down_block_additional_residuals=None, **kwargs):
            outs = []
            hooks = [b.register_forward_hook(lambda m, i, o: outs.append(o)) for b in self.up_blocks]
            try:
                super().forward(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                                down_intrablock_additional_residuals=down_block_additional_residuals, return_dict=False)
            finally:
                for h in hooks:
                    h.remove()
            return tuple(outs)


    class TextAdapter(nn.Module):
        def __init__(self, text_dim=768):
            super().__init__()
            self.fc = nn.Sequential(nn.Linear(text_dim, text_dim), nn.GELU(), nn.Linear(text_dim, text_dim))

        def forward(self, latents, texts, gamma):
            texts = texts + gamma * self.fc(texts)
            return texts.unsqueeze(0).expand(latents.shape[0], -1, -1)


    class SELayer(nn.Module):
        def __init__(self, channel, reduction=16):
            super().__init__()
            self.avg_pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Sequential(nn.Linear(channel, channel // reduction, bias=False), nn.ReLU(inplace=True),
                                    nn.Linear(channel // reduction, channel, bias=False), nn.Sigmoid())

        def forward(self, x):
            w = self.fc(self.avg_pool(x).flatten(1))
            return x * w[:, :, None, None]


    class QualityFeatureDecoder(nn.Module):
        def __init__(self, in_channels=(320, 640, 1280, 1280), width=512, map_size=64):
            super().__init__()
            self.map_size = map_size
            for i, c in enumerate(in_channels, 1):
                setattr(self, f"conv{i}", nn.Conv2d(c, width, kernel_size=3, padding=1))
                setattr(self, f"se{i}", SELayer(width))
            self.fuse_conv = nn.Conv2d(4 * width, width, kernel_size=3, padding=1)
            self.se_fuse = SELayer(width)
            self.bnc1 = nn.BatchNorm2d(width)
            self.dropout = nn.Dropout(0.3)
            self.relu = nn.ReLU()
            self.conv_score1 = nn.Conv2d(width, 128, kernel_size=1)
            self.conv_score2 = nn.Conv2d(128, 32, kernel_size=1)
            self.conv_score3 = nn.Conv2d(32, 8, kernel_size=1)
            self.fc1 = nn.Linear(8 * map_size * map_size, 512)
            self.fc2 = nn.Linear(512, 512)
            self.fc3 = nn.Linear(512, 1)
            self.softm = nn.Softmax(dim=1)
            self.classifier_dist = nn.Linear(512, 24)

        def forward(self, x1, x2, x3, x4):
            size = (self.map_size, self.map_size)
            levels = []
            for i, x in enumerate((x1, x2, x3, x4), 1):
                x = F.interpolate(x, size=size, mode="bicubic", align_corners=False)
                levels.append(getattr(self, f"se{i}")(getattr(self, f"conv{i}")(x)))
            fused = self.se_fuse(self.fuse_conv(torch.cat(levels, dim=1)))
            fmap = self.relu(self.conv_score3(self.relu(self.conv_score2(self.relu(self.conv_score1(fused))))))
            h = self.relu(self.fc1(fmap.flatten(1)))
            h = self.relu(self.fc2(h))
            return self.fc3(h), fmap


    class DPIQA(nn.Module):
        def __init__(self, vae, unet, tokenizer, class_embeddings, width=512, map_size=64, gamma_init=1e-4,
                     adapter_blocks=2):
            super().__init__()
            self.vae, self.unet, self.tokenizer = vae, unet, tokenizer
            self.vae.requires_grad_(False)
            self.class_embeddings = class_embeddings
            dim = class_embeddings.shape[-1]
            self.gamma = nn.Parameter(torch.ones(dim) * gamma_init)
            self.text_adapter = TextAdapter(dim)
            channels = list(unet.config.block_out_channels)
            self.img_adapter = FullAdapter(channels=channels, num_res_blocks=adapter_blocks)
            self.QFD = QualityFeatureDecoder(channels, width, map_size)

        def forward(self, img):
            with torch.no_grad():
                latents = self.vae.encode(img).latent_dist.sample() * self.vae.config.scaling_factor
            context = self.text_adapter(latents, self.class_embeddings, self.gamma)
            residuals = list(self.img_adapter(img))
            t = torch.ones((img.shape[0],), device=img.device).long()
            up0, up1, up2, up3 = self.unet(latents, t, encoder_hidden_states=context,
                                           down_block_additional_residuals=residuals)
            return self.QFD(up3, up2, up1, up0)
''')


def install(folder: Path) -> Path:
    """Write ``folder/iqa_models/{__init__,student,dpiqa}.py`` and put ``folder`` first on sys.path."""
    pkg = Path(folder) / "iqa_models"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "student.py").write_text(STUDENT_SRC)
    (pkg / "dpiqa.py").write_text(DPIQA_SRC)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return pkg


def uninstall(folder: Path) -> None:
    """Forget the replica package so that nothing later can import it by accident."""
    for name in [m for m in sys.modules if m == "iqa_models" or m.startswith("iqa_models.")]:
        del sys.modules[name]
    while str(folder) in sys.path:
        sys.path.remove(str(folder))
