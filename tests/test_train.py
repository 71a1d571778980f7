import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lmm_vqa import levels as lv
from lmm_vqa import losses
from lmm_vqa.cli import main as cli_main
from lmm_vqa.configs import load_config
from lmm_vqa.recipes import lora_finetune as recipe
from lmm_vqa.results import read_rows

CONFIGS = sorted((Path(recipe.__file__).parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_loads(path):
    cfg = load_config(recipe.TrainConfig, path)
    assert cfg.model and cfg.train_labels
    assert path.read_text().startswith("#"), "each config opens with the command that runs it"


def test_config_is_strict(tmp_path):
    with pytest.raises(ValueError, match="unknown setting.*lerning_rate"):
        load_config(recipe.TrainConfig, CONFIGS[0], ["lerning_rate=1"])
    with pytest.raises(ValueError, match="epochs='three'"):
        load_config(recipe.TrainConfig, CONFIGS[0], ["epochs=three"])
    with pytest.raises(ValueError, match="vision must be one of"):
        load_config(recipe.TrainConfig, CONFIGS[0], ["vision=half"])
    cfg = load_config(recipe.TrainConfig, CONFIGS[0], ["lr=1e-3", "lora_targets=[q_proj, v_proj]"])
    assert cfg.lr == 1e-3 and cfg.lora_targets == ["q_proj", "v_proj"]
    # YAML reads `no` as false: a text setting keeps the word, on the command line and in a file
    assert load_config(recipe.TrainConfig, CONFIGS[0], ["mixed_precision=no"]).mixed_precision == "no"
    (tmp_path / "c.yaml").write_text(CONFIGS[0].read_text() + "\nmixed_precision: no\n")
    assert load_config(recipe.TrainConfig, tmp_path / "c.yaml").mixed_precision == "no"
    with pytest.raises(ValueError, match="gradient_checkpointing='sure'"):
        load_config(recipe.TrainConfig, CONFIGS[0], ["gradient_checkpointing=sure"])


def test_hard_labels_are_qalign_equal_width_bins():
    got = lv.hard_labels([0, 19.9, 20.1, 50, 80, 80.1, 100], (0, 100), lv.DEFAULT_LEVELS).argmax(1)
    assert got.tolist() == [0, 0, 1, 2, 3, 4, 4]


def test_soft_labels_keep_the_expectation():
    values = np.asarray(lv.DEFAULT_LEVELS.values)
    score = np.array([1.0, 1.7, 3.0, 3.49, 4.9, 5.0])
    for target in (lv.two_nearest_labels(score, lv.DEFAULT_LEVELS),
                   lv.gaussian_labels(score, np.full(6, 0.7), lv.DEFAULT_LEVELS)):
        assert np.allclose(target.sum(1), 1) and (target >= 0).all()
        assert np.allclose(target @ values, score, atol=0.05)
    centred = lv.gaussian_labels([3.0], [1.0], lv.DEFAULT_LEVELS)[0]  # a singular correction system
    assert centred @ values == pytest.approx(3.0) and centred[0] == pytest.approx(centred[4]) and centred[0] > 0.05
    g = lv.gaussian_labels([3.2], [0.8], lv.DEFAULT_LEVELS)[0]
    assert (g > 0.01).sum() >= 3, "a wide std spreads over more than two levels"
    assert np.allclose(lv.gaussian_labels([3.2], [np.nan], lv.DEFAULT_LEVELS),
                       lv.two_nearest_labels([3.2], lv.DEFAULT_LEVELS)), "no std: two nearest levels"


def test_rank_loss_only_compares_inside_groups():
    pred = torch.tensor([1.0, 2.0, 3.0, 0.0], requires_grad=True)
    mos = torch.tensor([2.0, 1.0, 0.0, 5.0])
    groups = torch.tensor([0, 0, 1, 1])
    losses.rank_loss(pred, mos, groups).backward()
    # pairs (0,1) and (3,2) only: both ordered wrongly, so the gradients push 0 and 3 up, 1 and 2 down
    assert pred.grad[0] < 0 and pred.grad[3] < 0 and pred.grad[1] > 0 and pred.grad[2] > 0
    assert float(losses.plcc_loss(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0]))) < 1e-6


def test_group_batches_stay_inside_groups():
    cfg = load_config(recipe.TrainConfig, CONFIGS[0], ["group_batches=true", "batch_size=3"])
    groups = ["a"] * 7 + ["b"] * 5
    batches = recipe.epoch_batches(cfg, groups, epoch=0, rank=0, world=1)
    assert sorted(i for b in batches for i in b) == list(range(12))
    assert all(len({groups[i] for i in b}) == 1 for b in batches)
    halves = [recipe.epoch_batches(cfg, groups, 0, r, 2) for r in (0, 1)]
    assert len(halves[0]) == len(halves[1]) and not {i for b in halves[0] for i in b} & {i for b in halves[1] for i in b}


def _train(tmp_path, checkpoint, data, name, *extra, family="llava"):
    out = tmp_path / name
    args = ["train", str(CONFIGS[[p.stem for p in CONFIGS].index("synthetic_vdpve")]),
            f"model={checkpoint(family)}", f"train_labels={data / 'train/labels.txt'}",
            f"val_labels={data / 'val/labels.txt'}", f"output_dir={out}", "batch_size=4", "num_workers=0",
            "gradient_checkpointing=false", "log_every=1", *extra]
    assert cli_main(args) == 0
    return out


def test_training_learns_and_the_output_scores(tmp_path, checkpoint, synth_vdpve, capsys):
    out = _train(tmp_path, checkpoint, synth_vdpve, "run", "epochs=3", "lr=3e-3", "merge=true")
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    loss = [r["level"] for r in log if "level" in r]
    assert len(loss) == 33 and np.mean(loss[-5:]) < 0.8 * np.mean(loss[:5]), loss
    assert sum("val_metric" in r for r in log) == 3
    saved = load_config(recipe.TrainConfig, out / "config.yaml")  # the resolved config, loadable as it is
    assert saved.epochs == 3 and saved.lr == 3e-3 and saved.output_dir == str(out) and saved.merge
    assert json.loads((out / "scorer.json").read_text())["frames"] == "fps:1"
    # the output folder is a scorer: adapter + processor + scorer.json, and so is the merged copy
    test_dir = synth_vdpve / "test"
    assert cli_main(["score", str(test_dir), "--model", str(out), "--out", str(tmp_path / "a.csv"), "--quiet"]) == 0
    assert cli_main(["score", str(test_dir), "--model", str(out / "merged"), "--out", str(tmp_path / "m.csv"),
                     "--quiet"]) == 0
    assert cli_main(["score", str(test_dir), "--model", str(checkpoint("llava")), "--out", str(tmp_path / "b.csv"),
                     "--quiet"]) == 0
    adapter, merged, base = (np.array([float(r["score"]) for r in read_rows(tmp_path / f)]) for f in ("a.csv", "m.csv", "b.csv"))
    assert np.allclose(adapter, merged, atol=1e-4)
    assert np.abs(adapter - base).max() > 0.05, "training changed the scores"


def test_time_steps_says_where_a_steps_time_goes(tmp_path, checkpoint, synth_vdpve):
    """time_steps=true logs ms per batch for data, forward, backward and optimizer; together they account for the
    steps' wall time between two log records."""
    out = _train(tmp_path, checkpoint, synth_vdpve, "timed", "max_steps=10", "time_steps=true")
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    parts = ("ms_data", "ms_forward", "ms_backward", "ms_optimizer")
    assert len(log) == 10 and all(r[k] > 0 for r in log for k in parts)
    charged = sum(r[k] for r in log[1:] for k in parts) / 1000
    wall = log[-1]["seconds"] - log[0]["seconds"]
    assert 0.7 * wall - 0.1 < charged < 1.3 * wall + 0.1, (charged, wall)  # "seconds" is rounded to 0.1


def test_frame_cache_and_val_limit_in_a_run(tmp_path, checkpoint, synth_vdpve):
    """frame_cache: every training video decoded once into the cache before the first epoch; val_limit: the
    validation scores that many videos; random_crop and hflip run on cached frames (LLaVA's processor centre-crops)."""
    cache = tmp_path / "cache"
    out = _train(tmp_path, checkpoint, synth_vdpve, "cached", "max_steps=2", f"frame_cache={cache}", "val_limit=3",
                 "random_crop=true", "hflip=0.5")
    n_train = len((synth_vdpve / "train/labels.txt").read_text().splitlines())
    assert len(list(cache.glob("*.npy"))) == n_train and not list(cache.glob("*.part"))
    val = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if "val_n" in line]
    assert [r["val_n"] for r in val] == [3]


def test_resume_continues_exactly(tmp_path, checkpoint, synth_vdpve):
    a = _train(tmp_path, checkpoint, synth_vdpve, "a", "max_steps=4", "save_every=2", "lora_dropout=0.3",
               "frames_per_sample=random")
    b = _train(tmp_path, checkpoint, synth_vdpve, "b", "max_steps=4", "save_every=2", "lora_dropout=0.3",
               "frames_per_sample=random", "--resume", str(a / "checkpoints/step_2"))
    wa, wb = (load_file(d / "checkpoints/step_4/trainable.safetensors") for d in (a, b))
    w2 = load_file(a / "checkpoints/step_2/trainable.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], w2[k]) for k in wa), "steps 3-4 changed the weights"


@pytest.mark.parametrize("family", ["qwen2_vl", "llava_onevision", "mplug_owl2", "qwen3_vl", "qwen3_5"])
def test_other_families_train_with_all_keyframes(tmp_path, checkpoint, synth_vdpve, family):
    out = _train(tmp_path, checkpoint, synth_vdpve, family, "max_steps=2", "frames_per_sample=all", "max_frames=2",
                 "vision=lora", "gradient_checkpointing=true", "lr=1e-2", family=family)
    weights = load_file(out / "adapter_model.safetensors")
    moved = [k for k, w in weights.items() if "lora_B" in k and w.abs().max() > 0]  # B starts at zero
    assert any(v in k for k in moved for v in ("visual.", "vision_tower", "vision_model"))
    assert any("language_model" in k or ".model.layers." in k for k in moved)
    if family == "mplug_owl2":  # LoRA on the modality-adaptive layers: the visual tokens' own key/value copies
        assert any("k_proj.multiway.1" in k for k in moved) and any("v_proj.multiway.1" in k for k in moved)


def test_multi_token_levels_train_exactly(tmp_path, checkpoint, synth_vdpve):
    """Level words of several tokens: the training log-probabilities (prompt re-run with the word
    appended) equal scoring's (KV-cache continuation)."""
    from lmm_vqa.checkpoints import load_scorer
    from lmm_vqa.scoring import level_word_logprobs

    scorer = load_scorer(checkpoint("qwen2_vl", False), device="cpu")
    assert scorer.exact
    frames = scorer.load(synth_vdpve / "test" / sorted(p.name for p in (synth_vdpve / "test").glob("*.mp4"))[0])
    inputs = scorer.encode([scorer.render_prompt(1), scorer.render_prompt(1, question="Rate it.")],
                           [frames.frames[0], frames.frames[-1]])
    with torch.no_grad():
        cached = level_word_logprobs(scorer.model, inputs, scorer.level_ids, scorer.mrope, use_cache=True)
        rerun = level_word_logprobs(scorer.model, inputs, scorer.level_ids, scorer.mrope, use_cache=False)
    assert torch.allclose(cached, rerun, atol=1e-4)


def test_quantization_needs_a_gpu(tmp_path, checkpoint, synth_vdpve, capsys):
    if torch.cuda.is_available():
        pytest.skip("this checks the CPU error")
    out = tmp_path / "q"
    code = cli_main(["train", "synthetic_vdpve", f"model={checkpoint('llava')}", "quantization=4",
                     f"train_labels={synth_vdpve / 'train/labels.txt'}", f"output_dir={out}"])
    assert code == 2 and "needs a CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize("family", ["llava", "qwen2_vl"])
def test_full_vision_training_keeps_the_projector_trainable(checkpoint, family):
    from transformers import AutoModelForImageTextToText

    from lmm_vqa.adapters import make_trainable, module_roles

    model = AutoModelForImageTextToText.from_pretrained(checkpoint(family))
    roles = module_roles(model)
    trained = make_trainable(model, language="full", vision="full", projector=True)
    frozen = [n for n, p in trained.named_parameters() if not p.requires_grad]
    assert not frozen, frozen
    model = AutoModelForImageTextToText.from_pretrained(checkpoint(family))
    lora = make_trainable(model, language="lora", vision="frozen", projector=True)
    grads = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert any(roles.projector.split(".")[-1] in n for n in grads)
    assert not any(".vision_tower." in n or (".visual." in n and ".merger." not in n) for n in grads)


def test_vision_lora_on_a_convolutional_tower_adapts_its_1x1_convolutions(checkpoint):
    """FastVLM's tower has nn.Linear only in its attention stages; its MLPs are 1x1 convolutions, which
    `vision: lora` adapts too (spatial and depthwise convolutions stay frozen), and nonzero adapters there move
    the image features."""
    import torch
    from transformers import AutoModelForImageTextToText

    from lmm_vqa.adapters import make_trainable

    model = AutoModelForImageTextToText.from_pretrained(checkpoint("fast_vlm"))
    lora = make_trainable(model, language="frozen", vision="lora", projector=False)
    adapted = {n.rsplit(".lora_A", 1)[0] for n, p in lora.named_parameters() if p.requires_grad and ".lora_A" in n}
    modules = dict(lora.named_modules())
    convs = [n for n in adapted if isinstance(modules[n].base_layer, torch.nn.Conv2d)]
    assert convs and all(modules[n].base_layer.kernel_size == (1, 1) for n in convs), sorted(adapted)
    assert any(n.endswith("mlp.fc1") for n in convs) and any(n.endswith("qkv") for n in adapted)
    pixels = torch.rand(2, 3, 256, 256)
    tower = lora.base_model.model.model.vision_tower
    before = tower(pixel_values=pixels).last_hidden_state.detach()
    for n in convs:  # peft starts B at zero: the adapters change nothing until trained
        torch.nn.init.normal_(modules[n].lora_B["default"].weight, std=1e-2)
    assert (tower(pixel_values=pixels).last_hidden_state - before).abs().max() > 1e-4


def test_group_normalise_scales_the_std_with_the_mos():
    mos = np.array([10.0, 20.0, 30.0, 100.0, 200.0, 300.0])
    std = np.array([5.0, 5.0, 5.0, 50.0, 50.0, 50.0])  # the same relative spread in both groups
    norm, norm_std = recipe.normalise_in_groups(mos, std, ["a"] * 3 + ["b"] * 3)
    assert norm.tolist() == [0, 0.5, 1, 0, 0.5, 1] and norm_std.tolist() == [0.25] * 6
    cfg = load_config(recipe.TrainConfig, CONFIGS[0], ["labels=gaussian"])
    targets = recipe.level_targets(cfg, norm, norm_std, lv.DEFAULT_LEVELS, (0.0, 1.0))
    np.testing.assert_allclose(targets[:3], targets[3:])  # so the two groups get the same Gaussian labels
    wide = recipe.level_targets(cfg, norm, std, lv.DEFAULT_LEVELS, (0.0, 1.0))  # the std left unscaled
    assert not np.allclose(wide[:3], wide[3:])


def test_val_every_skips_validations_but_always_validates_the_end(tmp_path, checkpoint, synth_vdpve):
    out = _train(tmp_path, checkpoint, synth_vdpve, "run", "epochs=3", "val_every=2", "val_limit=8")
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log if "val_metric" in r] == [1, 2]  # the second epoch, and the last
    assert (out / "scorer.json").exists() and len(list((out / "checkpoints").glob("step_*"))) == 2
    with pytest.raises(ValueError, match="val_every"):
        load_config(recipe.TrainConfig, CONFIGS[0], ["val_every=0"])


def test_training_scores_a_video_as_scoring_does(checkpoint, synth_vdpve):
    """frames_per_sample: all. The score the training losses see for a video, from the training data path
    (collate, prompt re-run without a cache), is the score `lmm-vqa score` gives it."""
    from lmm_vqa.checkpoints import load_scorer
    from lmm_vqa.scoring import level_word_logprobs
    from lmm_vqa.video import Sampling

    scorer = load_scorer(checkpoint("llava", False), device="cpu", frames="uniform:3", max_frames=3)
    assert scorer.exact  # several-token level words: the cached and re-run paths differ in code
    paths = sorted(str(p) for p in (synth_vdpve / "test").glob("*.mp4"))[:2]
    samples = recipe.VideoSamples(paths, Sampling.parse("uniform:3", 3), "all", seed=0)
    inputs, owner, _ = recipe.Collate(scorer.processor, scorer.config)([samples[0], samples[1]])
    assert len(owner) == 6  # three keyframes per video
    # the GPU's route (preprocess: auto): uint8 frames from the workers, the processor run on the training device
    raw, raw_owner, _ = recipe.Collate(scorer.processor, scorer.config, raw=True)([samples[0], samples[1]])
    assert raw[1][0].dtype == torch.uint8 and raw_owner.tolist() == owner.tolist()
    finished = recipe.Collate(scorer.processor, scorer.config, raw=True).finish(raw, torch.device("cpu"), torch.float32)
    assert finished.keys() == inputs.keys() and torch.equal(finished["input_ids"], inputs["input_ids"])
    torch.testing.assert_close(finished["pixel_values"], inputs["pixel_values"], atol=1e-5, rtol=0)
    with torch.no_grad():
        row_logp = level_word_logprobs(scorer.model, inputs, scorer.level_ids, scorer.mrope, use_cache=False)
    member = torch.nn.functional.one_hot(owner, 2).T.float()
    trained = recipe.video_scores(row_logp, member, torch.tensor(lv.DEFAULT_LEVELS.values))
    scored = [scorer.score_video(p)["score"] for p in paths]
    assert trained.tolist() == pytest.approx(scored, abs=1e-5)


def test_resume_refuses_a_checkpoint_that_holds_code(tmp_path, checkpoint, synth_vdpve, capsys):
    a = _train(tmp_path, checkpoint, synth_vdpve, "a", "max_steps=2", "save_every=1")
    state = a / "checkpoints/step_1/state.pt"
    torch.save({"payload": Path("not a tensor")}, state)  # any pickled object, as an attacker would plant
    out = tmp_path / "b"
    code = cli_main(["train", str(CONFIGS[[p.stem for p in CONFIGS].index("synthetic_vdpve")]),
                     f"model={checkpoint('llava')}", f"train_labels={synth_vdpve / 'train/labels.txt'}",
                     "val_labels=null", f"output_dir={out}", "batch_size=4", "num_workers=0", "max_steps=2",
                     "--resume", str(a / "checkpoints/step_1")])
    assert code == 2 and "could run code" in capsys.readouterr().err


def test_training_defaults_are_scorings():
    """The settings that travel as scorer.json have one set of defaults: scoring's."""
    import dataclasses

    from lmm_vqa.scoring import ScorerConfig

    train, score = recipe.TrainConfig(train_labels="x", model="y"), ScorerConfig()
    shared = {f.name for f in dataclasses.fields(ScorerConfig)} & {f.name for f in dataclasses.fields(recipe.TrainConfig)}
    assert len(shared) == 8 and all(getattr(train, k) == getattr(score, k) for k in shared)


def test_a_short_training_improves_the_validation_metric_over_the_untrained_start(tmp_path, checkpoint):
    """The recipe learns what it is shown: a tiny random LLaVA, 60 steps on graded clips darkened or brightened
    to known strengths (sources never in validation); validation SRCC rises well above the untrained model's."""
    from lmm_vqa import synth
    from lmm_vqa.checkpoints import load_scorer
    from lmm_vqa.data import load_labels
    from lmm_vqa.metrics import srcc

    data = tmp_path / "graded"
    synth.make(data, "graded", sources=30, size=(96, 64), seconds=0.5, fps=4, seed=0, workers=2)
    for split in ("train", "val"):
        lines = (data / split / "labels.txt").read_text().splitlines()
        kept = [line for line in lines if line.split("_")[0] in ("none", "dark", "bright")]
        (data / split / "sub.txt").write_text("\n".join(kept) + "\n")
    val = load_labels(data / "val" / "sub.txt")
    untrained = load_scorer(checkpoint("llava"), frames="fps:2", max_frames=4)
    before = srcc(np.array([r["score"] for r in untrained.score_paths(val["path"])]), np.array(val["mos"]))
    out = tmp_path / "run"
    assert cli_main(["train", str(CONFIGS[[p.stem for p in CONFIGS].index("demo_model")]), f"model={checkpoint('llava')}",
                     f"train_labels={data / 'train/sub.txt'}", f"val_labels={data / 'val/sub.txt'}",
                     f"output_dir={out}", "max_steps=60", "epochs=6", "batch_size=8", "lr=3e-3", "num_workers=1",
                     "mixed_precision=no", "log_every=10"]) == 0
    after = max(json.loads(line)["val_srcc"] for line in (out / "log.jsonl").read_text().splitlines() if "val_srcc" in line)
    assert after > before + 0.25, (before, after)
