import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lmm_vqa import dual, fusion
from lmm_vqa.cli import main
from lmm_vqa.levels import FINE_LEVELS
from lmm_vqa.results import read_rows
from lmm_vqa.testing import moving_pattern
from conftest import FAMILIES
from scipy import stats
from lmm_vqa.views import fragments, frame_views, global_view, grid_crops, views_per_frame

FILL = (122, 116, 104)


def test_global_view_pads_with_the_mean_colour():
    frame = moving_pattern(1, 60, 120, seed=1)[0]  # landscape: bands above and below
    view = global_view(frame, 64, FILL)
    assert view.shape == (64, 64, 3)
    assert (view[:10] == FILL).all() and (view[-10:] == FILL).all()
    assert not (view[32] == FILL).all()


def test_grid_crops_are_native_resolution_pixels():
    frame = moving_pattern(1, 120, 200, seed=2)[0]
    crops = grid_crops(frame, 48, 4, FILL)
    assert len(crops) == 4 and all(c.shape == (48, 48, 3) for c in crops)
    assert np.array_equal(crops[0], frame[:48, :48])  # top-left crop, unscaled
    assert np.array_equal(crops[-1], frame[-48:, -48:])
    small = grid_crops(frame[:20, :30], 48, 2, FILL)  # smaller than the encoder: padded, not scaled
    assert np.array_equal(small[0][:20, :30], frame[:20, :30]) and (small[0][20:] == FILL).all()


def test_fragments_stitch_native_patches():
    frame = moving_pattern(1, 96, 160, seed=3)[0]
    img = fragments(frame, 64, 4, FILL)
    assert img.shape == (64, 64, 3)
    patch = img[:16, :16]
    hits = [(y, x) for y in range(96 - 15) for x in range(160 - 15) if np.array_equal(frame[y:y + 16, x:x + 16], patch)]
    assert hits, "each fragment is a verbatim patch of the frame"


@pytest.mark.parametrize("views,local,count", [("frame", "grid:4", 1), ("global", "grid:4", 1), ("local", "grid:3", 3),
                                               ("dual", "grid:4", 5), ("dual", "fragments:4", 2)])
def test_views_per_frame(views, local, count):
    frame = moving_pattern(1, 50, 90, seed=4)[0]
    assert len(frame_views(frame, views, local, 32, FILL)) == count == views_per_frame(views, local)
    with pytest.raises(ValueError, match="local views"):
        views_per_frame("dual", "tiles:4")


def test_fusion_weights_follow_the_informative_part():
    rng = np.random.default_rng(0)
    mos = rng.uniform(0, 100, 80)
    good = mos / 100 + rng.normal(0, 0.05, 80)
    noise = rng.uniform(0, 1, 80)
    weights, metric = fusion.fit_weights(np.c_[noise, good], mos)
    assert weights[1] >= 0.9 and abs(weights.sum() - 1) < 1e-9 and metric > 0.8
    assert np.allclose(fusion.fuse(np.c_[noise, good], [0.25, 0.75]), 0.25 * noise + 0.75 * good)


def test_fusion_never_weights_an_anti_correlated_part():
    """Scored by |correlation|, as the challenges report, the anti-correlated part would win and take all
    the weight; the fit must choose on signed correlations, with and without CVQAD-style groups."""
    rng = np.random.default_rng(1)
    mos = rng.uniform(0, 100, 120)
    groups = [f"g{i // 20}" for i in range(120)]
    anti = 1 - mos / 100 + rng.normal(0, 0.02, 120)
    good = mos / 100 + rng.normal(0, 0.4, 120)
    for g in (groups, None):
        weights, metric = fusion.fit_weights(np.c_[anti, good], mos, g)
        assert weights.tolist() == [0.0, 1.0] and metric > 0, (g is None, weights)


def test_fusion_fit_is_the_best_grid_point_by_an_independent_ntire_score():
    rng = np.random.default_rng(2)
    mos = rng.uniform(0, 100, 200)
    coarse = mos / 100 + rng.normal(0, 0.3, 200)
    fine = mos / 100 + rng.normal(0, 0.3, 200)  # equally informative, independent errors: mixing helps
    parts = np.c_[coarse, fine]

    def ntire(pred):  # NTIRE 2023 main score, written out with scipy
        fitted = np.polyval(np.polyfit(pred, mos, 3), pred)
        return (stats.spearmanr(pred, mos)[0] + stats.pearsonr(fitted, mos)[0]) / 2

    grid = np.round(np.arange(0, 1.0001, 0.05), 2)
    scores = [ntire(parts @ [1 - w, w]) for w in grid]
    weights, metric = fusion.fit_weights(parts, mos)
    assert weights[1] == pytest.approx(grid[int(np.argmax(scores))]) and 0.1 < weights[1] < 0.9
    assert metric == pytest.approx(max(scores), abs=1e-12)


def test_hive_trains_fits_and_scores_with_both_views_and_level_sets(tmp_path, checkpoint, synth_vdpve, capsys):
    common = [f"model={checkpoint('llava')}", f"train_labels={synth_vdpve / 'train/labels.txt'}",
              f"val_labels={synth_vdpve / 'val/labels.txt'}", "max_steps=3", "batch_size=4", "num_workers=0",
              "gradient_checkpointing=false", "max_frames=2", "lr=3e-3"]
    for part in ("coarse", "fine"):
        assert main(["train", "hive_" + part + "_synthetic", *common, f"output_dir={tmp_path / part}"]) == 0
    assert json.loads((tmp_path / "fine/scorer.json").read_text())["levels"] == FINE_LEVELS.to_json()
    hive_dir = tmp_path / "hive"
    assert main(["hive", str(tmp_path / "coarse"), str(tmp_path / "fine"), "--val",
                 str(synth_vdpve / "val/labels.txt"), "--out", str(hive_dir)]) == 0
    spec = json.loads((hive_dir / "hive.json").read_text())
    assert abs(sum(spec["weights"].values()) - 1) < 1e-9 and spec["fit"]["n"] == 21

    out = tmp_path / "hive.csv"
    assert main(["score", str(synth_vdpve / "test"), "--model", str(hive_dir), "--out", str(out), "--quiet"]) == 0
    rows = read_rows(out)
    assert len(rows) == 21 and all(r["status"] == "ok" for r in rows)
    compiled = tmp_path / "hive_compiled.csv"  # the compiled layers switch adapters between the two parts
    assert main(["score", str(synth_vdpve / "test"), "--model", str(hive_dir), "--out", str(compiled), "--quiet",
                 "--compile", "on"]) == 0
    for key in ("score", "score_coarse", "score_fine"):
        np.testing.assert_allclose([float(r[key]) for r in read_rows(compiled)], [float(r[key]) for r in rows],
                                   atol=1e-4)
    alone = {}
    for part in ("coarse", "fine"):  # each adapter scored on its own, as a plain fine-tuned folder
        csv = tmp_path / f"{part}.csv"
        assert main(["score", str(synth_vdpve / "test"), "--model", str(tmp_path / part), "--out", str(csv),
                     "--quiet"]) == 0
        alone[part] = np.array([float(r["score"]) for r in read_rows(csv)])
        inside = np.array([float(r[f"score_{part}"]) for r in rows])
        assert np.abs(inside - alone[part]).max() < 1e-4, f"the {part} adapter inside HIVE scores as it does alone"
    assert np.abs(alone["coarse"] - alone["fine"]).max() > 1e-3
    # Both level sets span 1-5, so the fused score is the weighted mean of the two parts' scores.
    for weights in ({"coarse": 1.0, "fine": 0.0}, {"coarse": 0.0, "fine": 1.0}, {"coarse": 0.25, "fine": 0.75}):
        (hive_dir / "hive.json").write_text(json.dumps({**spec, "weights": weights}))
        assert main(["score", str(synth_vdpve / "test"), "--model", str(hive_dir), "--out",
                     str(tmp_path / "w.csv"), "--quiet", "--overwrite"]) == 0
        fused = np.array([float(r["score"]) for r in read_rows(tmp_path / "w.csv")])
        np.testing.assert_allclose(fused, weights["coarse"] * alone["coarse"] + weights["fine"] * alone["fine"],
                                   atol=1e-4)


def test_hive_refuses_adapters_with_different_views(tmp_path, checkpoint, synth_vdpve):
    common = [f"model={checkpoint('llava')}", f"train_labels={synth_vdpve / 'train/labels.txt'}", "max_steps=1",
              "batch_size=4", "num_workers=0", "gradient_checkpointing=false", "max_frames=1"]
    assert main(["train", "hive_coarse_synthetic", *common, "val_labels=null", f"output_dir={tmp_path / 'c'}"]) == 0
    assert main(["train", "hive_fine_synthetic", *common, "val_labels=null", "views=global", "encoder=shared",
                 f"output_dir={tmp_path / 'f'}"]) == 0
    code = main(["hive", str(tmp_path / "c"), str(tmp_path / "f"), "--val", str(synth_vdpve / "val/labels.txt"),
                 "--out", str(tmp_path / "h")])
    assert code == 2


def _probs(scorer, frames):
    images = [scorer.prompt_images([f]) for f in frames]
    return scorer.level_probs([scorer.prompt_for(im) for im in images], [i for im in images for i in im])


@pytest.mark.parametrize("family", FAMILIES)
def test_dual_encoder_starts_as_the_global_view_model_and_fuses_local_views(checkpoint, family):
    from transformers import AutoProcessor

    from lmm_vqa.checkpoints import describe, load_model
    from lmm_vqa.scoring import Scorer, ScorerConfig

    folder = checkpoint(family)
    processor = AutoProcessor.from_pretrained(folder)
    frames = list(moving_pattern(3, 72, 100, seed=5))
    plain = Scorer(load_model(describe(folder), "cpu", torch.float32), processor, ScorerConfig(views="global"))
    model = load_model(describe(folder), "cpu", torch.float32)
    dual.attach_dual_encoder(model)
    hive = Scorer(model, processor, ScorerConfig(views="dual", local_views="grid:2", encoder="dual"))
    assert hive.prompt_for(hive.prompt_images(frames[:1])).count("image") == plain.prompt_for(
        plain.prompt_images(frames[:1])).count("image"), "the prompt names the global view only"
    assert np.abs(_probs(hive, frames) - _probs(plain, frames)).max() < 1e-6, "output 0: the global-view model"

    with torch.no_grad():
        dual.inner_model(model).hive_fusion.out.reset_parameters()  # as if trained: the fusion adds something
    gated = _probs(hive, frames)
    # in log-probabilities: a tiny random model can sit at p(level) ~ 0.99, where probabilities barely move
    assert np.abs(np.log(gated) - np.log(_probs(plain, frames))).max() > 1e-2, "an open gate lets the local views in"
    # the local views come from the frame's native pixels: changing only what the crops see changes the score
    edited = [f.copy() for f in frames]
    for f in edited:
        f[:36, :36] = 255 - f[:36, :36]
    hive.config.views = "dual"
    assert np.abs(_probs(hive, edited) - gated).max() > 1e-4


def test_fuse_views_batched_equals_frame_by_frame():
    torch.manual_seed(0)
    fusion_module = dual.LocalGlobalFusion(32)
    with torch.no_grad():
        fusion_module.gate.fill_(0.7)
        fusion_module.out.reset_parameters()
    glob = [torch.randn(5, 32) for _ in range(3)]
    local = [torch.randn(4, 32) for _ in range(6)]
    batched = dual.fuse_views(fusion_module, glob, local)
    one_by_one = [fusion_module(g[None], torch.cat(local[2 * i:2 * i + 2])[None])[0] for i, g in enumerate(glob)]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(batched, one_by_one))
    ragged = dual.fuse_views(fusion_module, glob[:2] + [torch.randn(7, 32)], local)  # unequal lengths: per frame
    assert [tuple(x.shape) for x in ragged] == [(5, 32), (5, 32), (7, 32)]


def test_dual_encoder_trains_two_encoders_and_its_folder_scores(tmp_path, checkpoint, synth_vdpve):
    out = tmp_path / "dual"
    assert main(["train", "hive_coarse_synthetic", f"model={checkpoint('llava')}",
                 f"train_labels={synth_vdpve / 'train/labels.txt'}", "val_labels=null", "max_steps=4",
                 "batch_size=4", "num_workers=0", "gradient_checkpointing=false", "max_frames=2", "lr=1e-2",
                 f"output_dir={out}"]) == 0
    weights = load_file(out / "adapter_model.safetensors")
    out_proj = [v for k, v in weights.items() if k.endswith("hive_fusion.out.weight")]
    assert len(out_proj) == 1 and out_proj[0].abs().max().item() > 1e-4, "the fusion trained and is saved"
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    assert log and all(r["fusion_share"] > 0 for r in log), "from the first logged step the local views get in"
    q_global = [k for k in weights if ".vision_tower." in k and "hive_local" not in k and "q_proj.lora_B" in k]
    q_local = [k.replace("model.vision_tower", "model.hive_local.vision_tower") for k in q_global]
    assert q_global and all(k in weights for k in q_local)
    assert any(not torch.equal(weights[g], weights[l]) for g, l in zip(q_global, q_local)), "two encoders"
    assert any("hive_local.multi_modal_projector" in k for k in weights), "the local encoder's own projector"

    csv = tmp_path / "dual.csv"
    assert main(["score", str(synth_vdpve / "test"), "--model", str(out), "--out", str(csv), "--quiet"]) == 0
    rows = read_rows(csv)
    assert len(rows) == 21 and all(r["status"] == "ok" for r in rows)
    from lmm_vqa.checkpoints import load_scorer

    with pytest.raises(ValueError, match="needs views: dual"):
        load_scorer(out, device="cpu", views="global")
    video = synth_vdpve / "test" / rows[0]["path"].split("/")[-1]
    assert main(["explain", str(video), "--model", str(out), "--max-new-tokens", "4", "--with-score"]) == 0


def test_dual_encoder_cannot_merge(checkpoint, synth_vdpve):
    from lmm_vqa.configs import load_config
    from lmm_vqa.recipes.lora_finetune import TrainConfig

    with pytest.raises(ValueError, match="merge"):
        load_config(TrainConfig, "train/configs/hive_coarse_synthetic.yaml", ["merge=true"])
    with pytest.raises(ValueError, match="views: dual"):
        load_config(TrainConfig, "train/configs/hive_coarse_synthetic.yaml", ["views=global"])


@pytest.mark.parametrize("family,projector", [("qwen2_vl", "hive_local.visual.merger"),
                                              ("llava_onevision", "hive_local.multi_modal_projector"),
                                              ("mplug_owl2", "hive_local.visual_abstractor"),
                                              ("qwen3_5", "hive_local.visual.merger")])
def test_dual_encoder_trains_on_other_families(tmp_path, checkpoint, synth_vdpve, family, projector):
    out = tmp_path / family
    assert main(["train", "hive_coarse_synthetic", f"model={checkpoint(family)}", "val_labels=null",
                 f"train_labels={synth_vdpve / 'train/labels.txt'}", "max_steps=2", "batch_size=4", "num_workers=0",
                 "gradient_checkpointing=true", "max_frames=1", "local_views=grid:2", f"output_dir={out}"]) == 0
    weights = load_file(out / "adapter_model.safetensors")
    assert any("hive_local" in k and "lora_A" in k for k in weights), "the local encoder's own LoRA"
    assert any(projector in k for k in weights) and any(k.endswith("hive_fusion.gate") for k in weights)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if '"step"' in line]
    assert all("gate_tanh" in r and "fusion_share" in r for r in log if "loss" in r), "the gate is logged"
    from lmm_vqa.checkpoints import load_scorer

    row = load_scorer(out, device="cpu").score_video(sorted((synth_vdpve / "test").glob("*.mp4"))[0])
    assert row["status"] == "ok", row["error"]


@pytest.mark.parametrize("family", ["llava", "qwen2_vl"])  # a SentencePiece-style and a byte-level tokenizer
def test_add_level_words_gives_fine_words_one_token_each_and_keeps_5_level_scores(tmp_path, checkpoint, synth_vdpve,
                                                                                   family):
    import sys
    from pathlib import Path

    from transformers import AutoTokenizer

    from lmm_vqa.levels import DEFAULT_LEVELS
    from lmm_vqa.scoring import ScorerConfig, resolve_level_tokens

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
    from add_level_words import anchors_of, main as add_words

    assert anchors_of(2.5, DEFAULT_LEVELS) == ["poor", "fair"] and anchors_of(1.0, DEFAULT_LEVELS) == ["bad"]
    base, out = checkpoint(family), tmp_path / "base_fine"
    prefix = ScorerConfig.load(base).answer_prefix
    before = resolve_level_tokens(AutoTokenizer.from_pretrained(base), prefix, FINE_LEVELS.words)
    new = [w for w, ids in zip(FINE_LEVELS.words, before) if len(ids) > 1]
    assert new  # the tiny tokenizers know the five Q-Align words and a few others, not HIVE's finer ones
    add_words([str(base), str(out)])
    tokenizer = AutoTokenizer.from_pretrained(out)
    after = resolve_level_tokens(tokenizer, prefix, FINE_LEVELS.words)
    assert all(len(ids) == 1 for ids in after)
    assert [a for a, b in zip(after, before) if len(b) == 1] == [b for b in before if len(b) == 1]  # known: unchanged

    weights = load_file(out / "model.safetensors")
    head = next(v for k, v in weights.items() if k.endswith("lm_head.weight"))
    ids = dict(zip(FINE_LEVELS.words, (i[0] for i in after)))
    for word in new:
        anchors = anchors_of(FINE_LEVELS.values[FINE_LEVELS.words.index(word)], DEFAULT_LEVELS)
        torch.testing.assert_close(head[ids[word]], head[[ids[a] for a in anchors]].mean(0))
    scores = {}
    for name, folder in (("before", base), ("after", out)):  # the five words' probabilities are untouched
        csv = tmp_path / f"{name}.csv"
        assert main(["score", str(synth_vdpve / "test"), "--model", str(folder), "--out", str(csv), "--quiet",
                     "--max-frames", "2"]) == 0
        scores[name] = np.array([float(r["score"]) for r in read_rows(csv)])
    np.testing.assert_allclose(scores["after"], scores["before"], atol=1e-5)
    add_words([str(out), str(tmp_path / "again")])  # nothing left to add: the same vocabulary
    assert len(AutoTokenizer.from_pretrained(tmp_path / "again")) == len(tokenizer)
