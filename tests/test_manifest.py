"""Manifest reading/validation (data/manifest.py): round trip, unlabelled rows, one-line errors naming
the file and the row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpiqa_edge.data.manifest import Row, read_manifest, write_manifest
from dpiqa_edge.errors import ManifestError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / name)
    return tmp_path


def test_round_trip_with_optional_columns_and_unlabelled_rows(folder):
    rows = [Row("a.png", 12.5, "train", "r1", "s1", "jpeg", 3), Row(str(folder / "b.png"), None, "test")]
    path = write_manifest(folder / "m.csv", rows)
    back = read_manifest(path)
    assert [(r.path, r.mos, r.split, r.ref, r.scene, r.distortion, r.level) for r in back] == \
        [("a.png", 12.5, "train", "r1", "s1", "jpeg", 3), (str(folder / "b.png"), None, "test", "", "", "", None)]
    assert back[0].abspath == str((folder / "a.png").resolve())
    assert len(back.labelled()) == 1 and len(back.split("test")) == 1 and back[0].group == "s1"


def test_minimal_header_is_enough(folder):
    (folder / "m.csv").write_text("path,mos,split\na.png,50,val\n")
    assert read_manifest(folder / "m.csv")[0].mos == 50.0


@pytest.mark.parametrize("text,row,problem", [
    ("path,split\na.png,train\n", None, "missing column(s) mos"),
    ("path,mos,split\na.png,good,train\n", 2, "'good' is not a number"),
    ("path,mos,split\na.png,50,train\nb.png,50,holdout\n", 3, "unknown split 'holdout'"),
    ("path,mos,split\na.png,50,train\nc.png,50,train\n", 3, "image file not found: c.png"),
    ("path,mos,split\na.png,101,train\n", 2, "outside the 0-100 scale"),
    ("path,mos,split\na.png,-3,train\n", 2, "outside the 0-100 scale"),
    ("path,mos,split\na.png,nan,train\n", 2, "outside the 0-100 scale"),
    ("path,mos,split,level\na.png,5,train,two\n", 2, "level 'two' is not an integer"),
    ("path,mos,split\n,5,train\n", 2, "empty path"),
    ("path,mos,split\n", None, "no rows"),
])
def test_bad_manifests_give_one_line_naming_file_and_row(folder, text, row, problem):
    path = folder / "bad.csv"
    path.write_text(text)
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    msg = str(err.value)
    assert "\n" not in msg and problem in msg
    assert msg.startswith(f"{path}:{row}:" if row else f"{path}:")


def test_missing_manifest_and_check_files_off(folder):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(folder / "nope.csv")
    (folder / "m.csv").write_text("path,mos,split\nmissing.png,5,train\n")
    assert read_manifest(folder / "m.csv", check_files=False)[0].path == "missing.png"


def test_cli_index_reports_a_bad_score_in_one_line(folder):
    from click.testing import CliRunner

    from dpiqa_edge.cli import main

    (folder / "bad.csv").write_text("path,mos,split\na.png,500,train\n")
    (folder / "scores.csv").write_text("path,mos,split\na.png,500,train\n")
    res = CliRunner().invoke(main, ["data", "index", "--dataset", "csv", "--root", str(folder), "--csv", str(folder / "scores.csv"),
                                    "--out", str(folder / "o.csv")])
    assert res.exit_code == 1 and "scores.csv:2: score 500 outside the nominal range 0-100" in res.output


def test_sample_rows_is_seeded_sorted_and_takes_all_when_few():
    from dpiqa_edge.data.manifest import sample_rows

    rows = [Row(f"s{i % 3}/img{i:02d}.png", 50.0, "val") for i in range(20)]
    a, b = sample_rows(rows, 8), sample_rows(list(reversed(rows)), 8)
    assert [r.path for r in a] == [r.path for r in b] == sorted(r.path for r in a)  # same sample, any input order
    assert len(a) == 8 and len({r.path for r in a}) == 8
    assert [r.path for r in sample_rows(rows, 50)] == sorted(r.path for r in rows)
