"""The graded synthetic benchmark: frame-visible distortions at graded strengths, labelled by what was done."""

from pathlib import Path

import numpy as np
import pytest

from lmm_vqa import synth
from lmm_vqa.cli import main
from lmm_vqa.data import load_labels

STRENGTHS = {int(round(100 * s)): s for s in synth.GRADED_STRENGTHS}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("graded")
    return out, synth.make(out, "graded", sources=3, size=(128, 72), seconds=0.5, fps=4, seed=0)


def test_labels_say_what_was_done_whatever_the_content(graded):
    out, counts = graded
    per_source = 1 + len(synth.GRADED_PARAMS) * len(synth.GRADED_STRENGTHS)
    assert counts == {"test": per_source, "val": per_source, "train": per_source}
    sources = {}
    for split in counts:
        ds = load_labels(out / split / "labels.txt", check_files=True)  # every video exists
        for name, mos in zip(ds["name"], ds["mos"]):
            kind, source, strength = Path(name).stem.rsplit("_", 2)
            assert mos == pytest.approx(100 - 80 * int(strength) / 100)  # the strength alone sets the label
            assert kind in synth.GRADED_PARAMS or (kind, strength) == ("none", "000")
            sources.setdefault(split, set()).add(source)
    assert not (sources["train"] & sources["test"]) and not (sources["train"] & sources["val"])


def _ssim(a, b):
    from skimage.metrics import structural_similarity

    luma = np.array([0.299, 0.587, 0.114], np.float32)
    return structural_similarity(a.astype(np.float32) @ luma, b.astype(np.float32) @ luma, data_range=255.0)


def test_every_kind_gets_worse_with_strength():
    """Against the pristine frame, each kind's distortion grows with its strength (luma SSIM falls)."""
    rng = np.random.default_rng(0)
    clip = synth.render_clip(synth.source_image(1, rng), (320, 180), 1, rng)
    for kind in synth.GRADED_PARAMS:
        if kind == "compression":
            crfs = [synth.graded_param(kind, s) for s in synth.GRADED_STRENGTHS]
            assert crfs == sorted(crfs) and crfs[0] > synth.GRADED_CLEAN_CRF
            continue
        ssim = [_ssim(clip[0], synth.graded_distort(clip, kind, synth.graded_param(kind, s))[0])
                for s in (0.0,) + synth.GRADED_STRENGTHS]
        assert ssim[0] > 0.99 and all(a > b for a, b in zip(ssim, ssim[1:])), (kind, ssim)


def test_the_clustered_variant_crowds_into_a_narrow_band():
    plain = [synth.graded_mos(s) for _, s in synth.graded_plan("plain")]
    clustered = [synth.graded_mos(s) for _, s in synth.graded_plan("clustered")]
    assert min(clustered) >= 60 and max(clustered) - min(clustered) <= 20  # one level of a 5-level model is 20 wide
    assert np.std(clustered) < np.std(plain) / 3


def test_the_narrow_variant_labels_the_plain_clips_in_one_coarse_bin():
    """Same clips as plain, same order of MOS, squeezed into 62-80: Q-Align's hard targets are one word for all
    of them, HIVE's nine levels tell three apart (and in the clustered variant both tell the same two apart)."""
    from lmm_vqa.levels import DEFAULT_LEVELS, FINE_LEVELS, hard_labels

    plan = synth.graded_plan("narrow")
    assert plan == synth.graded_plan("plain")
    mos = np.array([synth.graded_mos(s, "narrow") for _, s in plan])
    plain = np.array([synth.graded_mos(s) for _, s in plan])
    assert mos.min() == 62 and mos.max() == 80 and (np.argsort(-mos, kind="stable") == np.argsort(-plain, kind="stable")).all()

    def targets(mos, levels):
        return {levels.words[i] for i in hard_labels(mos, (0, 100), levels).argmax(1)}

    assert targets(mos, DEFAULT_LEVELS) == {"good"} and targets(mos, FINE_LEVELS) == {"decent", "good", "great"}
    clustered = np.array([synth.graded_mos(s) for _, s in synth.graded_plan("clustered")])
    assert targets(clustered, DEFAULT_LEVELS) == {"good", "excellent"} and targets(clustered, FINE_LEVELS) == {"good", "great"}


def test_local_artefacts_fade_when_the_frame_is_resized_to_the_encoders_input(tmp_path):
    """At 1280x720 the local variant's strongest artefacts are there at native resolution; resized to 336 px
    wide (what a vision tower gets) most of their energy is gone."""
    from PIL import Image

    from lmm_vqa.encoding import write_video
    from lmm_vqa.video import load_frames

    rng = np.random.default_rng(0)
    clip = synth.render_clip(synth.source_image(0, rng), (1280, 720), 2, rng)

    def resized(frame):
        return np.asarray(Image.fromarray(frame).resize((336, 189), Image.BICUBIC)).astype(np.float32)

    for kind in synth.LOCAL_PARAMS:
        param = synth.graded_param(kind, 1.0, "local")
        if kind == "compression":
            write_video(tmp_path / "c.mp4", clip, fps=25, crf=int(param))
            decoded = load_frames(tmp_path / "c.mp4", "uniform:1", 1)
            got, ref = decoded.frames[0], clip[decoded.indices[0]]
        else:
            got, ref = synth.graded_distort(clip, kind, param)[0], clip[0]
        native = np.sqrt(np.mean((got.astype(np.float32) - ref) ** 2))
        small = np.sqrt(np.mean((resized(got) - resized(ref)) ** 2))
        assert native > 1.5 and small < 0.5 * native, (kind, native, small)


def test_the_cli_makes_a_variant_and_refuses_one_for_another_layout(tmp_path, capsys):
    out = tmp_path / "clustered"
    assert main(["synth", str(out), "--layout", "graded", "--variant", "clustered", "--sources", "3", "--size",
                 "96x64", "--seconds", "0.5", "--fps", "4", "--workers", "1"]) == 0
    ds = load_labels(out / "train" / "labels.txt", check_files=True)
    assert len(ds) == len(synth.graded_plan("clustered")) and min(ds["mos"]) >= 60
    assert main(["synth", str(tmp_path / "narrow"), "--layout", "graded", "--variant", "narrow", "--sources", "1",
                 "--size", "96x64", "--seconds", "0.5", "--fps", "4", "--workers", "1"]) == 0
    narrow = load_labels(tmp_path / "narrow" / "train" / "labels.txt", check_files=True)
    assert len(narrow) == 33 and set(narrow["mos"]) == {80, 75.5, 71, 66.5, 62}
    assert main(["synth", str(tmp_path / "x"), "--variant", "local"]) == 2
    assert "--variant local is a variant of --layout graded" in capsys.readouterr().err


def test_versions_makes_some_of_each_sources_clips_and_the_same_clips(graded, tmp_path, capsys):
    """--versions K: each source's pristine clip and K of its other versions, not the same K for every source;
    a kept clip is the very clip the whole plan makes of that source (the content does not depend on K)."""
    from lmm_vqa.video import load_frames

    full, _ = graded
    out = tmp_path / "some"
    assert main(["synth", str(out), "--layout", "graded", "--versions", "4", "--sources", "3", "--size", "128x72",
                 "--seconds", "0.5", "--fps", "4", "--seed", "0", "--workers", "1"]) == 0
    picked = {}
    for split in ("train", "val", "test"):
        ds = load_labels(out / split / "labels.txt", check_files=True)
        assert len(ds) == 5 and sum(n.startswith("none_") for n in ds["name"]) == 1
        picked[split] = sorted(ds["name"])
        for name in ds["name"]:  # the same frames (compared decoded: an encoder's threads may vary its bits)
            a, b = (load_frames(d / split / name, "uniform:2", 2).frames.astype(int) for d in (out, full))
            assert np.abs(a - b).mean() < 1, name
    assert len({tuple(n.split("_")[0] + n[-7:] for n in v) for v in picked.values()}) > 1
    assert main(["synth", str(tmp_path / "x"), "--layout", "graded", "--versions", "40", "--sources", "3"]) == 2
    assert "versions must be 1 to 32" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "y"), "--versions", "4", "--sources", "3"]) == 2
    assert "the vdpve layout makes all of them" in capsys.readouterr().err


def test_the_graded_check_counts_pristine_first_and_per_kind_srcc(graded, tmp_path):
    """eval/graded_check.py on predictions that follow the labels: SRCC 1, every pristine clip first."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
    from graded_check import check

    out, _ = graded
    labels = load_labels(out / "test" / "labels.txt")
    rows = ["path,status,score"] + [f"{name},ok,{1 + 4 * mos / 100}" for name, mos in zip(labels["name"], labels["mos"])]
    (tmp_path / "pred.csv").write_text("\n".join(rows) + "\n")
    r = check(tmp_path / "pred.csv", out / "test" / "labels.txt")
    assert r["srcc"] == pytest.approx(1.0) and r["pristine_first"] == 1.0
    assert r["within_source_srcc"] == pytest.approx(1.0) and r["pristine_sd"] is None  # one test source
    assert r["score_sd"] == pytest.approx(np.std([1 + 4 * m / 100 for m in labels["mos"]]))
    assert r["pairs"] == len(synth.GRADED_PARAMS) * 3  # one test source; strengths 0.5, 0.75 and 1.0 are clear
    assert r["cell_srcc"] == pytest.approx(1.0) and r["shares"]["cells"] == pytest.approx(1.0)
    # a score that the content shifts (one offset per source): each source's ranking stays perfect, the pristine
    # clips spread by the offsets, and the overall SRCC falls
    lines = [f"{out / split / line}" for split in ("train", "val", "test")
             for line in (out / split / "labels.txt").read_text().split()]
    (tmp_path / "all.txt").write_text("\n".join(lines) + "\n")
    offset = {}
    rows = ["path,status,score"]
    for line in lines:
        name, mos = line.split(",")
        source = synth.parse_graded_name(name)[1]
        offset.setdefault(source, 0.5 * len(offset))
        rows.append(f"{name},ok,{1 + 4 * float(mos) / 100 + offset[source]}")
    (tmp_path / "shifted.csv").write_text("\n".join(rows) + "\n")
    shifted = check(tmp_path / "shifted.csv", tmp_path / "all.txt")
    assert shifted["within_source_srcc"] == pytest.approx(1.0) and shifted["srcc"] < 0.99
    assert shifted["pristine_sd"] == pytest.approx(np.std([0.0, 0.5, 1.0]))
    # the split: the cells still order the labels, the sources' offsets carry a share, no clip has a rest of its own
    assert shifted["cell_srcc"] == pytest.approx(1.0) and shifted["shares"]["sources"] > 0.05
    assert shifted["shares"]["clips"] == pytest.approx(0.0, abs=1e-9)
    # with each clip's own SSIM: every distorted cell's mean SSIM; scores made from the SSIM itself follow it
    # inside every cell (three sources here: one clip per cell and source)
    from graded_check import full_reference_labels

    all_labels = load_labels(tmp_path / "all.txt")
    ssim = full_reference_labels(all_labels, "ssim")
    rows = ["path,status,score"] + [f"{n},ok,{v}" for n, v in zip(all_labels["name"], ssim)]
    (tmp_path / "ssim.csv").write_text("\n".join(rows) + "\n")
    r = check(tmp_path / "ssim.csv", tmp_path / "all.txt", vs_ssim=True)
    assert len(r["cell_ssim"]) == len(synth.GRADED_PARAMS) * 4 and all(0 < v < 1 for v in r["cell_ssim"].values())
    assert r["within_cell_ssim_srcc"] == pytest.approx(1.0)
    assert shifted["cell_srcc"] == pytest.approx(1.0) and "within_cell_ssim_srcc" not in shifted


def test_sources_past_the_sample_images_are_dead_leaves_pictures():
    """Content for any number of sources: occluding shapes with sharp edges and flat areas (where blur,
    noise, blocking and banding show), reproducible from the source's random generator, none alike."""
    first = len(synth.SOURCES)
    a = synth.source_image(first, np.random.default_rng([0, first]))
    assert a.shape == (1024, 1024, 3) and a.dtype == np.uint8
    assert np.array_equal(a, synth.source_image(first, np.random.default_rng([0, first])))
    b = synth.source_image(first + 1, np.random.default_rng([0, first + 1]))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 20
    luma = a.astype(np.float32).mean(-1)
    grad = np.hypot(*np.gradient(luma))
    assert (grad < 1).mean() > 0.3  # flat areas
    assert (grad > 20).mean() > 0.005  # sharp edges
    colours, counts = np.unique(a.reshape(-1, 3) // 16, axis=0, return_counts=True)
    assert len(colours) > 100 and counts.max() < 0.2 * counts.sum()  # many shapes, none covering the picture


def test_the_demo_bases_dct_stem_is_an_orthonormal_filter_bank(tmp_path):
    import sys

    from safetensors.torch import load_file

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
    from build_demo_base import dct_filters

    f = dct_filters(16, 192).reshape(192, -1)
    assert np.abs(f @ f.T - np.eye(192)).max() < 1e-5
    assert np.allclose(f[-1].reshape(3, 16, 16)[0], f[-1].reshape(3, 16, 16)[2])  # the last are luma: equal in R, G, B
    import subprocess

    subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "eval/build_demo_base.py"),
                    str(tmp_path / "base"), "--dct-stem"], check=True, capture_output=True)
    w = load_file(tmp_path / "base" / "model.safetensors")
    stem = next(v for k, v in w.items() if k.endswith("patch_embedding.weight"))
    assert np.allclose(stem.numpy().reshape(192, -1), f)


def test_clips_made_small_use_the_table_calibrated_at_their_size():
    """At 224x128 the 1280x720 table misses its labels (noise and blur milder, rescaling far harsher than the SSIM
    target); the 224x128 table, which a clip that size gets, hits them: mean luma SSIM at strength 1.0 over the
    calibration sources."""
    clips = []
    for s in range(6):
        rng = np.random.default_rng([0, s])
        clips.append(synth.render_clip(synth.source_image(s, rng), (224, 128), 2, rng))

    def mean_ssim(kind, param):
        return np.mean([_ssim(c[0], synth.graded_distort(c, kind, param)[0]) for c in clips])

    target = synth.GRADED_SSIM[-1]
    assert synth.graded_table(224) is synth.GRADED_PARAMS_BY_WIDTH[224] and synth.graded_table(1280) is synth.GRADED_PARAMS
    assert synth.graded_table(320) is synth.GRADED_PARAMS_BY_WIDTH[448]  # the nearest width, on a log scale
    for kind in ("noise", "blur", "rescale"):
        assert abs(mean_ssim(kind, synth.graded_param(kind, 1.0, width=224)) - target) < 0.01, kind
    assert mean_ssim("noise", synth.graded_param("noise", 1.0)) > target + 0.05  # the 1280 table's: too mild here
    assert mean_ssim("rescale", synth.graded_param("rescale", 1.0)) < target - 0.2  # and far too harsh
