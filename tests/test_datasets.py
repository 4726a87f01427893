"""Each real dataset's files, laid out as they ship (tiny generated images + score files in the real
formats), index into the same manifest form; bad files fail with one line naming the file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpiqa_edge.data.datasets import index_dataset
from dpiqa_edge.data.manifest import read_manifest
from dpiqa_edge.data.splits import check_disjoint
from dpiqa_edge.errors import InputError


def _img(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(path)


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as fh:  # KonIQ's files quote strings, as csv.QUOTE_NONNUMERIC does
        w = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
        w.writerow(header)
        w.writerows(rows)


KONIQ_COLS = ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"]


def make_koniq(root: Path, with_sets: bool = True, n: int = 10) -> Path:
    names = [f"{1000 + i}.jpg" for i in range(n)]
    mos = np.linspace(1.0, 5.0, n)
    for i, name in enumerate(names):
        _img(root / "1024x768" / name, i)
    rows = [[nm, 0, 1, 2, 3, 4, 10, float(m), 0.5, float((m - 1) * 25)] for nm, m in zip(names, mos)]
    _csv(root / "koniq10k_scores_and_distributions.csv", KONIQ_COLS, rows)
    if with_sets:
        sets = ["training"] * 6 + ["validation"] * 2 + ["test"] * (n - 8)
        _csv(root / "koniq10k_distributions_sets.csv", KONIQ_COLS + ["set"], [r + [s] for r, s in zip(rows, sets)])
    return root


def make_spaq(root: Path, n: int = 10) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"])
    for i in range(n):
        name = f"{i + 1:05d}.jpg"
        _img(root / "TestImage" / name, i)
        ws.append([name, 10.0 * i, 50, 50, 50, 50, 50])
    (root / "Annotations").mkdir(parents=True)
    wb.save(root / "Annotations" / "MOS and Image attribute scores.xlsx")
    return root


def make_livec(root: Path, n: int = 17) -> Path:
    from scipy.io import savemat

    names = [f"t{i + 1}.bmp" for i in range(7)] + [f"{i + 10}.JPG" for i in range(n - 7)]
    for i, name in enumerate(names):
        _img(root / "Images" / ("trainingImages" if i < 7 else "") / name, i)
    cell = np.empty((len(names), 1), dtype=object)  # a MATLAB cell array of char, as the release has it
    for i, name in enumerate(names):
        cell[i, 0] = np.array([name])
    (root / "Data").mkdir(parents=True)
    savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": cell})
    savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.linspace(5, 95, len(names))[None, :]})
    return root


def make_kadid(root: Path, refs: int = 6) -> Path:
    rows = []
    for r in range(1, refs + 1):
        _img(root / "images" / f"I{r:02d}.png", r)
        for d in (1, 2):
            for lvl in (1, 2, 3):
                name = f"I{r:02d}_{d:02d}_{lvl:02d}.png"
                _img(root / "images" / name, r * 100 + d * 10 + lvl)
                rows.append([name, f"I{r:02d}.png", 5.0 - lvl, 0.1])
    _csv(root / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"], rows)
    return root


def _check(out: Path, n: int) -> list:
    rows = read_manifest(out)  # the shared validator: files exist, mos in 0-100, known splits
    assert len(rows) == n
    assert all(r.mos is not None and 0.0 <= r.mos <= 100.0 for r in rows)
    check_disjoint(rows)
    return rows


def test_koniq_official_split_and_mos_mapping(tmp_path):
    out = index_dataset("koniq10k", make_koniq(tmp_path / "koniq"), tmp_path / "m" / "koniq.csv")
    rows = _check(out, 10)
    assert [r.split for r in rows].count("train") == 6 and [r.split for r in rows].count("val") == 2
    assert rows[0].mos == pytest.approx(0.0) and rows[-1].mos == pytest.approx(100.0)  # 1-5 -> 0-100
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["mos_range_original"] == [1.0, 5.0] and side["split"] == "official"
    assert not Path(rows[0].path).is_absolute()  # relative to the manifest's folder


def test_koniq_scores_only_gets_seeded_80_20(tmp_path):
    out = index_dataset("koniq10k", make_koniq(tmp_path / "k", with_sets=False), tmp_path / "k.csv", seed=1)
    rows = _check(out, 10)
    assert [r.split for r in rows].count("test") == 2 and "seeded" in json.loads(out.with_suffix(".json").read_text())["split"]


def test_spaq_xlsx(tmp_path):
    rows = _check(index_dataset("spaq", make_spaq(tmp_path / "spaq"), tmp_path / "spaq.csv"), 10)
    assert sorted(r.mos for r in rows) == pytest.approx([10.0 * i for i in range(10)])  # already 0-100


def test_livec_mat_drops_training_images(tmp_path):
    rows = _check(index_dataset("livec", make_livec(tmp_path / "clive"), tmp_path / "livec.csv"), 10)
    assert not any("trainingImages" in r.path for r in rows)
    assert min(r.mos for r in rows) > 5.0  # the first (lowest) 7 scores belonged to the dropped images


def test_kadid_grouped_by_reference(tmp_path):
    rows = _check(index_dataset("kadid10k", make_kadid(tmp_path / "kadid"), tmp_path / "kadid.csv"), 36)
    per = check_disjoint(rows)
    assert len(per["test"]) >= 1 and all(r.scene == r.ref for r in rows)
    assert {r.level for r in rows} == {1, 2, 3} and {r.distortion for r in rows} == {"01", "02"}
    assert max(r.mos for r in rows) == pytest.approx(75.0)  # dmos 4 on 1-5


def test_generic_csv_with_mos_range(tmp_path):
    root = tmp_path / "mine"
    for i in range(5):
        _img(root / "img" / f"{i}.png", i)
    _csv(root / "scores.csv", ["path", "mos", "split"], [[f"img/{i}.png", 1 + i, "training" if i < 3 else "test"] for i in range(5)])
    rows = _check(index_dataset("csv", root, tmp_path / "o.csv", mos_range=(1, 5)), 5)
    assert [r.mos for r in rows] == pytest.approx([0, 25, 50, 75, 100]) and rows[0].split == "train"
    again = _check(index_dataset("csv", root, root / "manifest.csv", mos_range=(1, 5)), 5)  # out inside root: rerun-safe
    assert _check(index_dataset("csv", root, root / "manifest.csv", mos_range=(1, 5)), 5)[0].mos == again[0].mos


# --- bad files: one line naming the file (and the row where there is one) ----------------------------
def _break_koniq_mos(root):
    p = root / "koniq10k_scores_and_distributions.csv"
    p.write_text(p.read_text().replace("5.0,", "abc,", 1))
    return p, "not a number"


def _koniq_out_of_range(root):
    p = root / "koniq10k_scores_and_distributions.csv"
    p.write_text(p.read_text().replace("5.0,", "7.5,", 1))
    return p, "outside the nominal range"


def _koniq_missing_column(root):
    p = root / "koniq10k_distributions_sets.csv"
    p.write_text(p.read_text().replace('"set"', '"subset"', 1))
    return p, "missing column"


def _koniq_unknown_set(root):
    p = root / "koniq10k_distributions_sets.csv"
    p.write_text(p.read_text().replace('"validation"', '"holdout"', 1))
    return p, "unknown set"


def _koniq_missing_image(root):
    (root / "1024x768" / "1003.jpg").unlink()
    return root, "not found"


@pytest.mark.parametrize("breaker", [_break_koniq_mos, _koniq_out_of_range, _koniq_missing_column, _koniq_unknown_set, _koniq_missing_image])
def test_bad_koniq_files(tmp_path, breaker):
    root = make_koniq(tmp_path / "k")
    named, problem = breaker(root)
    with pytest.raises(InputError) as err:
        index_dataset("koniq10k", root, tmp_path / "o.csv")
    msg = str(err.value)
    assert "\n" not in msg and str(named) in msg and problem in msg


def test_bad_spaq_livec_and_missing_files(tmp_path):
    (tmp_path / "spaq" / "Annotations").mkdir(parents=True)
    (tmp_path / "spaq" / "Annotations" / "MOS and Image attribute scores.xlsx").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"MOS and Image attribute scores\.xlsx: not a readable"):
        index_dataset("spaq", tmp_path / "spaq", tmp_path / "o.csv")
    root = make_livec(tmp_path / "clive")
    from scipy.io import savemat

    savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.ones((1, 3))})
    with pytest.raises(InputError, match="AllMOS_release.mat: 3 scores but"):
        index_dataset("livec", root, tmp_path / "o.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="dmos.csv not found"):
        index_dataset("kadid10k", tmp_path / "empty", tmp_path / "o.csv")


def test_cli_index_prints_counts(tmp_path):
    from click.testing import CliRunner

    from dpiqa_edge.cli import main

    root = make_kadid(tmp_path / "kadid")
    res = CliRunner().invoke(main, ["data", "index", "--dataset", "kadid10k", "--root", str(root), "--out", str(tmp_path / "k.csv")])
    assert res.exit_code == 0, res.output
    assert "36 images" in res.output and "test" in res.output
    (tmp_path / "empty").mkdir()
    bad = CliRunner().invoke(main, ["data", "index", "--dataset", "kadid10k", "--root", str(tmp_path / "empty"), "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code == 1 and "dmos.csv" in bad.output
