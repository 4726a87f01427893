"""``import_authors(path, out)``: the DP-IQA authors' released file -> a folder the rest of the road takes.

1. Read the file without trusting it: ``.onnx`` with onnx; ``.safetensors`` with safetensors; anything
   else as a torch pickle through the allowlist (``authors.pickles``; a state dict or their whole module).
2. Tell student from teacher by what it holds (``--kind`` may say which; it must agree).
3. Map it (``authors.student`` / ``authors.teacher``), load strictly, verify where a reference can run
   (the ONNX, with onnxruntime), measure what the preprocessing difference costs on a real photo.
4. Write a normal student folder (config.json + model.safetensors; ``prune``, ``export``, ``report``
   take it) or teacher folder (``teacher score`` takes it), under a temporary name, renamed when complete.
   An ONNX whose weights cannot be mapped is kept as it is (config.json + model.onnx): ``export`` takes it
   to ONNX and OpenVINO (INT8 included) and says in one line why not CoreML.

The import notes (``provenance.imported`` in config.json) record the source (file, form, sha256), the score
mapping, every renaming rule, dropped tensors, the verification and the preprocessing measurement.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError, ModelLoadError
from ..export.parity import package_photos
from ..io import atomic_path, check_out_dir, sha256_file, write_json
from ..runtime.preprocess import Preprocess
from ..student import StudentConfig, save_student
from ..student.checkpoint import onnx_only_config
from .archive import check_zip_budget
from .onnx_map import MappingError, check_student_shape, custom_domains, wrap
from .student import RENAME, from_onnx, from_state, is_student_state, run_onnx, score_mapping
from .teacher import from_pack, is_teacher_state

KINDS = ("auto", "student", "teacher")
#: the authors' preprocessing (koniq_demo.py): PIL open + convert('RGB'), torchvision Resize((512, 512)) on the
#: PIL image (PIL bilinear, which antialiases when shrinking), ToTensor (0..1, no normalisation)
AUTHORS_PREPROCESSING = "PIL Image.open().convert('RGB') -> torchvision Resize((512, 512)) (PIL bilinear) -> ToTensor"


def read_source(path: Path):
    """(form, object): ``onnx`` -> None (read later); ``state_dict`` -> dict; ``module`` -> stand-in tree."""
    import torch

    if not path.is_file():
        raise ModelLoadError(f"{path}: file not found")
    if path.suffix.lower() == ".onnx":
        import onnx

        try:  # read now so a broken file fails before anything is written; the graph is read again to map it
            proto = onnx.load(str(path), load_external_data=False)
            domains = custom_domains(proto)
            if not domains:
                onnx.checker.check_model(proto)
        except Exception as exc:  # noqa: BLE001 - protobuf decode errors, checker errors: one line
            raise ModelLoadError(f"{path}: not a readable ONNX model ({' '.join(str(exc).split())[:160]})") from None
        if domains:
            raise ModelLoadError(f"{path}: uses custom operators (domain {', '.join(map(repr, domains))[:120]}); "
                                 "the authors' student is plain ONNX: refused, nothing was run")
        try:
            check_student_shape(proto)
        except MappingError as exc:
            raise ModelLoadError(f"{path}: not the authors' student ({exc})") from None
        return "onnx", None
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return "state_dict", load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(f"{path}: unreadable safetensors ({exc})") from None
    from .pickles import load_untrusted  # lazy: authors.pickles imports torch at top

    obj = load_untrusted(path)
    if isinstance(obj, torch.nn.Module):
        return "whole_module_pickle", obj
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return "state_dict", dict(obj)
    raise ModelLoadError(f"{path}: holds a {type(obj).__name__}, neither a state dict nor the authors' module")


def import_authors(path: str | os.PathLike, out_dir: str | os.PathLike, *, kind: str = "auto",
                   label_range: tuple[float, float] = (0.0, 100.0), input_size: int | None = None,
                   sd_path: str | None = None, prompt_embeddings: str | None = None, clip_path: str | None = None,
                   log: Callable[[str], None] | None = print) -> Path:
    """Import one released file into ``out_dir``; returns the folder. See the module docstring."""
    say = log or (lambda _m: None)
    if kind not in KINDS:
        raise ConfigError(f"import: unknown --kind {kind!r}; valid: {', '.join(KINDS)}")
    path, out_dir = Path(path), Path(out_dir)
    check_out_dir(out_dir)  # only ever replace a folder of ours: a user's folder is refused before any work
    if path.is_file() and path.suffix.lower() not in (".onnx", ".safetensors"):
        check_zip_budget(path)  # before torch is imported: a refused file costs ~40 MB, not 600
    import torch

    from .pickles import AuthorsStudent, AuthorsTeacher, module_state  # lazy: authors.pickles imports torch at top

    # 1-2. Read and classify.
    form, obj = read_source(path)
    if form == "onnx":
        found = "student"  # the authors released their student, not their teacher, as ONNX
    else:
        state = module_state(obj) if isinstance(obj, torch.nn.Module) else obj
        found = ("student" if isinstance(obj, AuthorsStudent) or is_student_state(state) else
                 "teacher" if isinstance(obj, AuthorsTeacher) or is_teacher_state(state) else None)
        if found is None:
            raise ModelLoadError(f"{path}: neither the authors' student (base_model.*, fc1) nor their teacher (unet.*, QFD.*)")
    if kind != "auto" and kind != found:
        raise ConfigError(f"{path}: --kind {kind} given, but the file holds the authors' {found}")
    source = {"file": str(path.resolve()), "form": form, "sha256": sha256_file(path), "kind": found,
              "origin": "DP-IQA authors' release (RomGai/DP-IQA); check its licence before redistributing",
              "label_range": list(label_range)}
    say(f"import: {path.name}: the authors' {found}, {form.replace('_', ' ')}")
    # 3-4. Map, verify, write.
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        if found == "teacher":
            _teacher(obj, path, tmp, source, label_range, sd_path, prompt_embeddings, clip_path, say)
        else:
            _student(form, obj, path, tmp, source, label_range, input_size, say)
        check_out_dir(out_dir)  # again just before the rename: the folder may have been made meanwhile
    say(f"import: wrote {out_dir}")
    return out_dir


def _student(form, obj, path, tmp, source, label_range, input_size, say) -> None:
    import torch

    from .pickles import module_state  # lazy: authors.pickles imports torch at top

    notes = dict(source)
    scale, offset = score_mapping(label_range)
    notes["score_mapping"] = {"scale": scale, "offset": offset, "rule": (
        f"score = clamp({scale:g} * r {offset:+g}, 0, 100), r = the authors' output = label / 100 with labels "
        f"on {label_range[0]:g}..{label_range[1]:g}")}
    if form == "onnx":
        def photos_at(size):
            return Preprocess(size=(size, size)).batch([p for _, p in _photos()[:6]])

        try:
            model, cfg, extra = from_onnx(path, input_size, label_range, photos_at)
        except MappingError as exc:
            say(f"import: the ONNX weights cannot be mapped onto the paper student ({exc}); keeping the ONNX "
                "graph itself (exports to onnx/openvino, not coreml)")
            try:
                _onnx_only(path, tmp, notes, str(exc), scale, offset, input_size)
            except MappingError as again:  # not even the authors' interface (one image in, score + map out)
                raise ModelLoadError(f"{path}: not the authors' student graph ({again})") from None
            return
        notes.update(extra)
        say(f"import: verified against onnxruntime on {extra['onnx_verification']['n_images']} photos "
            f"(score max diff {extra['onnx_verification']['score_max_abs_diff']:.2g} on 0-100)")
    else:
        state = module_state(obj) if isinstance(obj, torch.nn.Module) else obj
        model, cfg = from_state(state, path, input_size, label_range)
        notes["renamed"] = {frm: to for frm, to in RENAME}
        notes["load"] = "strict (every tensor of the file used, every tensor of the student filled)"
    notes["photos"] = _photo_check(lambda x: _torch_scores(model, x), cfg.input_size, scale, offset, say)
    save_student(model, cfg, tmp, imported=notes)


def _onnx_only(path, tmp, notes, reason, scale, offset, input_size) -> None:
    info = wrap(path, tmp / "model.onnx", scale, offset)
    dims = info["input_dims"]
    size = int(input_size or (dims[-1] if isinstance(dims[-1], int) and dims[-1] > 0 else 512))
    _, fmap = run_onnx(tmp / "model.onnx", np.zeros((1, 3, size, size), np.float32), wrapped=True)
    cfg = StudentConfig(name="paper", input_size=size, map_size=int(fmap.shape[-1]), pretrained=False,
                        score_scale=scale, score_offset=offset)
    notes.update({"onnx_only": reason, "input_dims": dims})
    notes["photos"] = _photo_check(lambda x: run_onnx(tmp / "model.onnx", x, wrapped=True)[0], size, scale, offset,
                                   lambda _m: None)
    write_json(tmp / "config.json", onnx_only_config(cfg, reason, imported=notes))


def _teacher(obj, path, tmp, source, label_range, sd_path, prompt_embeddings, clip_path, say) -> None:
    import torch

    from ..teacher.model import save_teacher  # lazy: teacher.model imports torch at top

    model, extra = from_pack(obj, path, label_range, sd_path=sd_path, prompt_embeddings=prompt_embeddings,
                             clip_path=clip_path)
    notes = {**source, **extra, "score_mapping": {"scale": model.config.score_scale, "offset": model.config.score_offset}}
    # two passes of one photo (~10 s each for SD-1.5 at 512 on a CPU): the teacher is checked, not benchmarked
    notes["photos"] = _photo_check(lambda x: _torch_scores(model, x), model.config.image_size,
                                   model.config.score_scale, model.config.score_offset, say, n_more=0)
    say(f"import: teacher {model.config.image_size} px, decoder {model.config.decoder_width} wide, "
        f"{len(extra['dropped_unused'])} unused tensors dropped")
    with torch.no_grad():
        save_teacher(model, tmp, imported=notes)


def _photos():
    return package_photos()


def _torch_scores(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i:i + 1]))[0].numpy().reshape(-1) for i in range(len(x))])


def _photo_check(score_fn, size: int, scale: float, offset: float, say, n_more: int = 3) -> dict:
    """On real photos: the authors' preprocessing vs this toolkit's (chelsea, 451 x 300 -> size x size: the
    largest input difference and how far it moves the score), and the model's raw outputs
    r = (score - offset) / scale on a few photos, with a warning when they look like a 1-5 MOS read as /100."""
    import torch  # noqa: F401 - torchvision needs it
    from PIL import Image
    from torchvision import transforms

    pre = Preprocess(size=(size, size))
    name, rgb = next((n, p) for n, p in _photos() if "chelsea" in n)
    ours = pre(rgb)[None]
    theirs = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])(Image.fromarray(rgb))
    theirs = theirs.numpy()[None].astype(np.float32)
    s_ours, s_theirs = score_fn(ours), score_fn(theirs)
    others = [(n, p) for n, p in _photos() if n != name][:n_more]
    scores = np.concatenate([s_ours, score_fn(pre.batch([p for _, p in others]))]) if others else s_ours
    raw = (scores - offset) / scale
    note = {"authors": AUTHORS_PREPROCESSING,
            "ours": "runtime Preprocess: EXIF orientation applied, alpha over white, PIL bilinear stretch, x / 255",
            "photo": name, "size": size,
            "input_max_abs_diff": float(np.max(np.abs(ours - theirs))),
            "score_abs_diff": float(np.max(np.abs(s_ours - s_theirs))),
            "note": "the same PIL bilinear resize, so pixels agree to float rounding; photos carrying an EXIF "
                    "rotation differ (the authors' loader ignores EXIF orientation, ours applies it)",
            "raw_outputs": {n: round(float(r), 5) for n, r in zip([name] + [n for n, _ in others], raw)}}
    if np.all((raw > 0.0) & (raw < 0.06)):
        say("import: warning: the raw outputs (about 0.01-0.05) look like KonIQ's 1-5 MOS divided by 100; "
            "if so, import again with --label-range 1,5")
    return note
