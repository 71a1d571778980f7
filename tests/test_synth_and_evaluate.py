"""synth -> score -> evaluate, end to end, with tiny sizes."""

import json
import subprocess
import sys

import numpy as np
import pytest

from lmm_vqa import synth
from lmm_vqa.cli import main
from lmm_vqa.data import load_labels
from lmm_vqa.results import read_rows


@pytest.fixture(scope="module")
def vdpve(tmp_path_factory):
    out = tmp_path_factory.mktemp("vdpve")
    counts = synth.make(out, "vdpve", sources=3, size=(96, 64), seconds=1, fps=8, seed=0)
    return out, counts


@pytest.fixture(scope="module")
def cvqad(tmp_path_factory):
    out = tmp_path_factory.mktemp("cvqad")
    counts = synth.make(out, "cvqad", sources=3, size=(64, 64), seconds=1, fps=6, seed=1)
    return out, counts


def test_vdpve_layout_splits_by_source_and_loads_unchanged(vdpve):
    out, counts = vdpve
    assert counts == {"test": 21, "val": 21, "train": 21}
    sources = {}
    for split in counts:
        ds = load_labels(out / split / "labels.txt", check_files=True)  # every video exists
        assert set(ds["subset"]) == {"A", "B", "C"}
        assert all(0 <= m <= 100 for m in ds["mos"])
        sources[split] = {n.split("_")[1] for n in ds["name"]}
    assert not (sources["train"] & sources["val"]) and not (sources["train"] & sources["test"])
    # The pseudo-MOS follows the degradation strength inside a source and kind.
    ds = load_labels(out / "train" / "labels.txt")
    mos = dict(zip(ds["name"], ds["mos"]))
    src = next(iter(sources["train"]))
    assert mos[f"C_{src}_blur_15.mp4"] > mos[f"C_{src}_blur_90.mp4"]
    assert mos[f"C_{src}_noise_15.mp4"] > mos[f"C_{src}_noise_90.mp4"]


def test_cvqad_layout_groups_and_relative_scores(cvqad):
    out, counts = cvqad
    ds = load_labels(out / "train" / "Subjective_scores.csv", check_files=True)
    groups = set(ds["group"])
    assert len(groups) == 2 and {g.split("|")[1] for g in groups} == {"fast", "offline"}
    for g in groups:
        scores = [m for m, gg in zip(ds["mos"], ds["group"]) if gg == g]
        assert min(scores) == 0.0 and len(scores) == 16
    # Lower CRF (more bits) scores higher inside a codec and group.
    rows = [r for r in zip(ds["name"], ds["mos"], ds["group"]) if "h264_fast" in r[0]]
    by_crf = sorted(rows, key=lambda r: int(r[0].rsplit("crf", 1)[1][:-4]))
    assert by_crf[0][1] > by_crf[-1][1]


def test_synth_is_deterministic_whatever_the_workers(tmp_path):
    a = synth.make(tmp_path / "a", "vdpve", sources=3, size=(64, 64), seconds=0.5, fps=4, seed=5, workers=1)
    b = synth.make(tmp_path / "b", "vdpve", sources=3, size=(64, 64), seconds=0.5, fps=4, seed=5, workers=2)
    assert a == b
    for split in ("train", "val", "test"):
        assert (tmp_path / f"a/{split}/labels.txt").read_text() == (tmp_path / f"b/{split}/labels.txt").read_text()


def test_score_then_evaluate_end_to_end(vdpve, cvqad, checkpoint, tmp_path, capsys):
    for (out, _), labels, protocol in [(vdpve, "labels.txt", "ntire2023"),
                                       (cvqad, "Subjective_scores.csv", "aim2024")]:
        pred = tmp_path / f"{protocol}.csv"
        assert main(["score", str(out / "test"), "--model", str(checkpoint("llava")), "--out", str(pred),
                     "--quiet"]) == 0
        report = tmp_path / f"report_{protocol}"
        assert main(["evaluate", str(pred), "--labels", str(out / "test" / labels), "--out", str(report)]) == 0
        text = capsys.readouterr().out
        assert f"protocol: {protocol}" in text
        result = json.loads((report / "metrics.json").read_text())
        assert result["protocol"] == protocol and result["n"] == len(read_rows(pred))
        key = "main" if protocol == "ntire2023" else "final"
        assert result["overall"][key] is None or 0 <= result["overall"][key] <= 1
        assert (report / "scatter.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_lists_missing_and_extra_predictions(vdpve, tmp_path, capsys):
    out, _ = vdpve
    ds = load_labels(out / "val" / "labels.txt")
    pred = tmp_path / "p.csv"
    rng = np.random.default_rng(0)
    rows = [f"{p},ok,,{rng.uniform(1, 5):.4f}" for p in ds["path"][:-2]] + ["/else/where.mp4,ok,,3.0"]
    pred.write_text("path,status,error,score\n" + "\n".join(rows) + "\n")
    labels = str(out / "val" / "labels.txt")
    assert main(["evaluate", str(pred), "--labels", labels]) == 2
    err = capsys.readouterr().err
    assert "2 labelled videos have no prediction" in err and ds["name"][-1] in err and "where.mp4" in err
    assert main(["evaluate", str(pred), "--labels", labels, "--allow-missing"]) == 0
    assert "not evaluated: 2 labelled videos without a prediction, 1 predictions without a label" in \
        capsys.readouterr().out
    # only what is wrong is said: every label predicted, one prediction too many
    rows = [f"{p},ok,,{rng.uniform(1, 5):.4f}" for p in ds["path"]] + ["/else/where.mp4,ok,,3.0"]
    pred.write_text("path,status,error,score\n" + "\n".join(rows) + "\n")
    assert main(["evaluate", str(pred), "--labels", labels]) == 2
    err = capsys.readouterr().err
    assert "1 predictions have no label" in err and "no prediction" not in err


def test_evaluate_names_labels_whose_mos_is_not_a_number(tmp_path, capsys):
    (tmp_path / "labels.txt").write_text("A001.mp4,50\nA002.mp4,nan\nA003.mp4,70\nB004.mp4,inf\n")
    (tmp_path / "p.csv").write_text("path,status,error,score\n" + "".join(
        f"{tmp_path / n},ok,,3\n" for n in ("A001.mp4", "A002.mp4", "A003.mp4", "B004.mp4")))
    assert main(["evaluate", str(tmp_path / "p.csv"), "--labels", str(tmp_path / "labels.txt")]) == 2
    err = capsys.readouterr().err
    assert "2 of 4 videos" in err and "A002.mp4" in err and "B004.mp4" in err and "A001" not in err


def test_small_subsets_are_listed_not_dropped(tmp_path, capsys):
    rng = np.random.default_rng(1)
    names = [f"A{i:03d}.mp4" for i in range(12)] + ["B100.mp4", "B101.mp4", "B102.mp4"]  # subset B: 3 videos
    (tmp_path / "labels.txt").write_text("".join(f"{n},{rng.uniform(0, 100):.1f}\n" for n in names))
    (tmp_path / "p.csv").write_text("path,status,error,score\n" + "".join(
        f"{tmp_path / n},ok,,{rng.uniform(1, 5):.3f}\n" for n in names))
    assert main(["evaluate", str(tmp_path / "p.csv"), "--labels", str(tmp_path / "labels.txt"),
                 "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("subset=B"))
    assert "n too small" in line and " 3 " in line
    assert json.loads((tmp_path / "rep/metrics.json").read_text())["subsets"]["subset=B"]["note"] == "n too small"


def test_evaluate_imports_no_torch(vdpve, tmp_path):
    out, _ = vdpve
    ds = load_labels(out / "val" / "labels.txt")
    pred = tmp_path / "p.jsonl"
    pred.write_text("".join(json.dumps({"path": p, "status": "ok", "score": m / 20 + 1}) + "\n"
                            for p, m in zip(ds["path"], ds["mos"])))
    code = ("import sys; from lmm_vqa.cli import main\n"
            f"assert main(['evaluate', {str(pred)!r}, '--labels', {str(out / 'val' / 'labels.txt')!r}]) == 0\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "1.0000" in result.stdout  # a perfect monotone prediction: SRCC and cubic PLCC are 1


def test_metrics_json_writes_undefined_values_as_null_and_keeps_text():
    import math

    import numpy as np

    from lmm_vqa.report import nan_to_none

    result = {"main": math.nan, "subset": "NaN-free codec", "per": [np.float64("nan"), np.float32(0.5)], "n": np.int64(3)}
    text = json.dumps(nan_to_none(result), allow_nan=False)
    assert json.loads(text) == {"main": None, "subset": "NaN-free codec", "per": [None, 0.5], "n": 3}
