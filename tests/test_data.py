import csv
import json
import math

import pytest
from conftest import cvqad_file

from lmm_vqa.data import load_labels, vdpve_subset

CVQAD = cvqad_file("Subjective_scores.csv")


@pytest.mark.skipif(not CVQAD.is_file(), reason="../shared/data/cvqad not beside the checkout")
def test_real_cvqad_table():
    ds = load_labels(CVQAD)
    assert len(ds) == 1022
    assert len(set(ds["group"])) == 57  # (sequence, preset) groups, as the data's README says
    assert set(g.split("|")[1] for g in ds["group"]) == {"offline", "fast", "subjective"}
    assert min(ds["mos"]) == 0.0 and max(ds["mos"]) <= 7.5
    assert all(math.isnan(s) for s in ds["std"])


def test_vdpve_both_line_formats_subsets_and_relative_paths(tmp_path):
    (tmp_path / "labels.txt").write_text("A001.mp4,55.2\nB_017.mp4,-1,-1,61.0\nC12.mp4,40\nclip.mp4,70\n")
    ds = load_labels(tmp_path / "labels.txt")
    assert ds["mos"] == [55.2, 61.0, 40.0, 70.0]
    assert ds["subset"] == ["A", "B", "C", ""]
    assert ds["path"][0] == str(tmp_path / "A001.mp4")
    assert vdpve_subset("videos/Apple.mp4") == ""


def test_vdpve_bad_line_names_the_line(tmp_path):
    (tmp_path / "labels.txt").write_text("A001.mp4,55\nA002.mp4,1,2\n")
    with pytest.raises(ValueError, match="labels.txt:2"):
        load_labels(tmp_path / "labels.txt", layout="vdpve")


def test_qalign_json_and_generic_csv(tmp_path):
    (tmp_path / "q.json").write_text(json.dumps([{"img_path": "v/a.mp4", "gt_score": 3.5, "std": 0.4},
                                                 {"img_path": "v/b.mp4", "gt_score": 1.2}]))
    ds = load_labels(tmp_path / "q.json")
    assert ds["name"] == ["v/a.mp4", "v/b.mp4"] and ds["std"][0] == 0.4 and math.isnan(ds["std"][1])
    with open(tmp_path / "g.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "mos", "group"], ["x.mp4", "4", "s1"], ["y.mp4", "2", "s1"]])
    ds = load_labels(tmp_path / "g.csv")
    assert ds["group"] == ["s1", "s1"] and ds["mos"] == [4.0, 2.0]


def test_missing_videos_are_named_never_dropped(tmp_path):
    (tmp_path / "here.mp4").write_bytes(b"x")
    (tmp_path / "labels.txt").write_text("here.mp4,50\ngone1.mp4,40\ngone2.mp4,30\n")
    with pytest.raises(ValueError, match=r"2 of 3 videos .* gone1.mp4, gone2.mp4"):
        load_labels(tmp_path / "labels.txt", check_files=True)
    assert len(load_labels(tmp_path / "labels.txt")) == 3


def test_missing_label_file_and_unknown_layout(tmp_path):
    with pytest.raises(ValueError, match="no such label file"):
        load_labels(tmp_path / "nope.txt")
    (tmp_path / "l.txt").write_text("a.mp4,1\n")
    with pytest.raises(ValueError, match="layout must be"):
        load_labels(tmp_path / "l.txt", layout="konvid")


def test_several_label_files_make_one_mixture(tmp_path):
    from lmm_vqa.data import load_label_files

    for sub, lines in (("a", "x.mp4,10\ny.mp4,20\n"), ("b", "x.mp4,90\n")):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "labels.txt").write_text(lines)
    files = [tmp_path / "a" / "labels.txt", str(tmp_path / "b" / "labels.txt")]
    ds = load_label_files(files)
    assert ds["mos"] == [10.0, 20.0, 90.0]  # in order, each file's videos beside it
    assert ds["path"] == [str(tmp_path / "a" / "x.mp4"), str(tmp_path / "a" / "y.mp4"), str(tmp_path / "b" / "x.mp4")]
    assert load_label_files(files[0])["mos"] == [10.0, 20.0]
    with pytest.raises(ValueError, match="no label files"):
        load_label_files([])
