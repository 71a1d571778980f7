import json
import os

import numpy as np
import pytest
import torch
from conftest import FAMILIES
from transformers import AutoTokenizer

from lmm_vqa import load_scorer
from lmm_vqa.levels import DEFAULT_LEVELS, LevelSet, probs_to_score
from lmm_vqa.scoring import ScorerConfig, resolve_level_tokens


@pytest.mark.parametrize("mode", ["frame", "clip"])
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_scores_in_both_modes(family, mode, checkpoint, videos):
    scorer = load_scorer(checkpoint(family), mode=mode, frames="fps:4", max_frames=4)
    paths = [videos["h264"], videos["portrait"], videos["image"], videos["av1"]]
    rows = list(scorer.score_paths(paths, batch_size=3))
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    for r in rows:
        assert r["status"] == "ok", r["error"]
        p = np.array([r[f"p_{w}"] for w in DEFAULT_LEVELS.words])
        assert p.sum() == pytest.approx(1, abs=1e-5) and (p >= 0).all()
        assert r["score"] == pytest.approx(float(p @ np.arange(1, 6)), abs=1e-5)
        assert r["score_01"] == pytest.approx((r["score"] - 1) / 4, abs=1e-5)
        if mode == "frame":
            # the video's distribution is the mean of the frames' and the score is linear in it, so the
            # video's score is the mean of the frames' scores (a median, a log-mean or a max would not be)
            assert len(r["frame_scores"]) == r["num_frames"]
            assert r["score"] == pytest.approx(np.mean(r["frame_scores"]), abs=1e-5)
    assert [r["num_frames"] for r in rows] == [4, 4, 1, 4]
    # Different videos get different scores: the images reach the prediction.
    assert len({round(r["score"], 6) for r in rows}) == len(rows)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("single", [True, False])
def test_batch_size_does_not_change_scores(family, single, checkpoint, videos):
    # Mixed frame sizes across videos make batches padded (Qwen, OneVision); multi-token levels
    # exercise the KV-cache continuation under padding.
    scorer = load_scorer(checkpoint(family, single), frames="fps:5", max_frames=3, dtype=os.environ.get("LMM_VQA_TEST_DTYPE"))
    paths = [videos[k] for k in ("h264", "odd_size", "portrait", "image", "one_frame")]
    ref = [r["score"] for r in scorer.score_paths(paths, batch_size=1)]
    # fp32 (CPU, or --dtype fp32 on GPU): within 1e-3. bf16 on GPU: its matmul kernels change with the
    # batch shape, measured up to 3e-3 on an H200 even without padding (docs/benchmarks.md).
    atol = 1e-3 if scorer.model.dtype == torch.float32 else 5e-3
    for bs in (2, 7):
        got = [r["score"] for r in scorer.score_paths(paths, batch_size=bs)]
        np.testing.assert_allclose(got, ref, atol=atol)


@pytest.mark.parametrize("family", ["llava", "qwen2_vl"])
def test_multi_token_levels_are_exact_word_probabilities(family, checkpoint, videos):
    """KV-cache continuation == log P(word) computed by teacher forcing without a cache."""
    scorer = load_scorer(checkpoint(family, levels_single_token=False))
    assert scorer.exact and any(len(ids) > 1 for ids in scorer.level_ids)
    frame = scorer.load(videos["h264"]).frames[0]
    inputs = scorer.encode([scorer.render_prompt(1)], [frame])
    fast = scorer.level_logprobs(inputs)[0]
    for level, ids in enumerate(scorer.level_ids):
        full = dict(inputs)
        extra = torch.tensor([ids], device=inputs["input_ids"].device)
        full["input_ids"] = torch.cat([inputs["input_ids"], extra], 1)
        for key in ("attention_mask", "mm_token_type_ids"):
            if key in inputs:
                fill = torch.ones_like(extra) if key == "attention_mask" else torch.zeros_like(extra)
                full[key] = torch.cat([inputs[key], fill], 1)
        with torch.no_grad():
            logp = scorer.model(**full).logits[0].float().log_softmax(-1)
        n = inputs["input_ids"].shape[1]
        slow = sum(logp[n - 1 + i, t] for i, t in enumerate(ids))
        # fp32: to 1e-4 nats. bf16 on GPU rounds differently along the cached and uncached paths:
        # measured 3e-4 relative on an H200.
        tol = 1e-4 if scorer.model.dtype == torch.float32 else 2e-3 * abs(slow.item())
        assert fast[level].item() == pytest.approx(slow.item(), abs=tol)


def _tokenizer(checkpoint, family, single):
    return AutoTokenizer.from_pretrained(checkpoint(family, single))


@pytest.mark.parametrize("family", ["llava", "qwen2_vl"])
def test_level_tokens_with_and_without_bos(family, checkpoint):
    tok = _tokenizer(checkpoint, family, True)
    has_bos = tok("x")["input_ids"][0] == tok.bos_token_id if tok.bos_token_id is not None else False
    assert has_bos == (family == "llava")  # Llama prepends <s>; Qwen has no BOS
    ids = resolve_level_tokens(tok, "The quality of the video is", DEFAULT_LEVELS.words)
    assert all(len(i) == 1 for i in ids)
    for word, (i,) in zip(DEFAULT_LEVELS.words, ids):
        assert tok.decode([i]).strip() == word  # the word itself, never the BOS (Q-Align's id_[1] pitfall)


def test_multi_token_words_and_shared_first_tokens(checkpoint):
    tok = _tokenizer(checkpoint, "llava", False)
    ids = resolve_level_tokens(tok, "The quality of the video is", DEFAULT_LEVELS.words)
    assert any(len(i) > 1 for i in ids)
    assert len({i[0] for i in ids}) < len(ids)
    for word, i in zip(DEFAULT_LEVELS.words, ids):
        assert tok.decode(i).strip() == word


def test_scorer_json_travels_with_checkpoint_and_flags_override(checkpoint, tmp_path, videos):
    import shutil

    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint("qwen2_vl"), folder)
    levels = {"terrible": 0, "bad": 25, "fair": 50, "good": 75, "perfect": 100}
    ScorerConfig(mode="clip", frames="uniform:3", max_frames=3, levels=levels).save(folder)
    scorer = load_scorer(folder)
    assert scorer.config.mode == "clip" and scorer.levels.values == (0, 25, 50, 75, 100)
    row = scorer.score_video(videos["h264"])
    assert row["num_frames"] == 3 and 0 <= row["score"] <= 100 and "p_perfect" in row
    assert "The quality of the video is" == scorer.config.answer_prefix
    overridden = load_scorer(folder, mode="frame", frames="fps:1")
    assert overridden.config.mode == "frame" and overridden.config.answer_prefix == "The quality of the image is"
    (folder / "scorer.json").write_text(json.dumps({"mode": "clip", "colour": "blue"}))
    with pytest.raises(ValueError, match="unknown keys"):
        load_scorer(folder)


def test_score_video_reports_bad_inputs_as_rows(checkpoint, videos, tmp_path):
    scorer = load_scorer(checkpoint("llava"))
    for key in ("zero_bytes", "not_video"):
        row = scorer.score_video(videos[key])
        assert row["status"] == "error" and row["error"] and "score" not in row
    assert scorer.score_video(tmp_path / "missing.mp4")["error"].startswith("no such file")


def test_level_set_validation_and_score():
    with pytest.raises(ValueError, match="increase"):
        LevelSet(("a", "b"), (2.0, 1.0))
    with pytest.raises(ValueError, match="distinct"):
        LevelSet(("a", "a"), (1.0, 2.0))
    levels = LevelSet.from_json({"excellent": 5, "bad": 1, "fair": 3})
    assert levels.words == ("bad", "fair", "excellent")
    np.testing.assert_allclose(probs_to_score(np.array([[0.5, 0.5, 0.0]]), np.array(levels.values)), [2.0])


@pytest.mark.parametrize("family", ["llava", "qwen2_vl"])
def test_batches_in_flight_score_as_one_batch_at_a_time(family, checkpoint, videos):
    """score_paths launches batch N+1 (on a GPU: preprocessed on a side stream) before collecting
    batch N; each row must still get exactly its own frames' probabilities."""
    scorer = load_scorer(checkpoint(family), frames="fps:5", max_frames=3, dtype=os.environ.get("LMM_VQA_TEST_DTYPE"))
    paths = [videos[k] for k in ("h264", "not_video", "portrait", "vp9", "odd_size", "hevc")]
    rows = list(scorer.score_paths(paths, batch_size=2))
    atol = 1e-3 if scorer.model.dtype == torch.float32 else 5e-3
    assert [r["status"] for r in rows] == ["ok", "error", "ok", "ok", "ok", "ok"]
    for path, row in zip(paths, rows):
        if row["status"] != "ok":
            continue
        views = [scorer.prompt_images([f]) for f in scorer.load(path).frames]
        alone = np.concatenate([scorer.level_probs([scorer.prompt_for(v)], v) for v in views])  # (T, L)
        assert row["frame_scores"] == pytest.approx([scorer.summarise(p)["score"] for p in alone], abs=atol)


def test_progress_counts_each_videos_keyframes_as_batches_finish(checkpoint, videos):
    """score_paths(progress=...): per video, (0, keyframes) once decoded, then each batch's keyframes; a video
    that fails to decode is never reported; clip mode counts one prompt per video."""
    scorer = load_scorer(checkpoint("llava"), frames="fps:5", max_frames=3)
    paths = [videos[k] for k in ("h264", "not_video", "vp9")]
    heard = []
    rows = list(scorer.score_paths(paths, batch_size=2, progress=lambda *a: heard.append(a)))
    for index in (0, 2):
        mine = [(d, t) for i, d, t in heard if i == index]
        n = rows[index]["num_frames"]
        assert n == 3 and mine[0] == (0, n) and mine[-1] == (n, n)
        assert [d for d, _ in mine] == sorted(d for d, _ in mine) and len(mine) >= 3  # batches of 2: partway too
    assert not [h for h in heard if h[0] == 1] and rows[1]["status"] == "error"
    clip = load_scorer(checkpoint("llava"), mode="clip", frames="fps:5", max_frames=3)
    heard.clear()
    list(clip.score_paths(paths[:1], progress=lambda *a: heard.append(a)))
    assert heard == [(0, 0, 1), (0, 1, 1)]


@pytest.mark.parametrize("family", FAMILIES)
def test_channel_first_tensors_preprocess_as_arrays(family, checkpoint):
    """On a GPU the scorer hands the processor uploaded (3, H, W) tensors instead of arrays."""
    from transformers import AutoProcessor

    from lmm_vqa.scoring import chw_tensors, processor_inputs, render_prompt
    from lmm_vqa.testing import moving_pattern

    processor = AutoProcessor.from_pretrained(checkpoint(family))
    config = ScorerConfig()
    images = [moving_pattern(1, 72, 100, seed=1)[0], moving_pattern(1, 40, 30, seed=2)[0]]
    texts = [render_prompt(processor, 1, config) for _ in images]
    want = processor_inputs(processor, config, texts, images)
    got = processor_inputs(processor, config, texts, chw_tensors(images, "cpu"))
    # frames the decode workers handed over as (H, W, 3) tensors (page-locked on a GPU machine) go the same way
    as_tensors = processor_inputs(processor, config, texts, chw_tensors([torch.from_numpy(i) for i in images], "cpu"))
    assert want.keys() == got.keys() == as_tensors.keys()
    for key in want:
        assert torch.equal(want[key], got[key]) and torch.equal(want[key], as_tensors[key]), key


def test_scores_equal_a_forward_pass_written_out_by_hand(checkpoint, videos):
    """Q-Align's score computed here without the Scorer: the llava-1.5 prompt written out, one plain
    forward pass per keyframe, softmax over the five level tokens, mean over keyframes, dot 1..5."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = checkpoint("llava")
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    ids = [processor.tokenizer.convert_tokens_to_ids("\u2581" + w) for w in ("bad", "poor", "fair", "good", "excellent")]
    prompt = "USER: <image>\nHow would you rate the quality of this image? ASSISTANT: The quality of the image is"
    scorer = load_scorer(folder, frames="fps:2", max_frames=3)
    frames = scorer.load(videos["hevc"]).frames
    probs = []
    with torch.no_grad():
        for frame in frames:
            inputs = processor(text=[prompt], images=[frame], return_tensors="pt")
            probs.append(model(**inputs).logits[0, -1, ids].softmax(-1).numpy())
    want = np.mean(probs, 0) @ np.arange(1, 6)
    row = scorer.score_video(videos["hevc"], batch_size=2)
    assert len(frames) == 3 and row["num_frames"] == 3
    assert row["score"] == pytest.approx(want, abs=1e-5)
    assert [row[f"p_{w}"] for w in DEFAULT_LEVELS.words] == pytest.approx(np.mean(probs, 0), abs=1e-5)


def test_compiled_scoring_agrees_with_eager(checkpoint, videos, tmp_path, monkeypatch):
    """torch.compile of the language model (--compile on) keeps the scores' meaning; here with Inductor's
    CPU backend in fp32, and one graph for every batch shape (dynamic)."""
    import torch._dynamo

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    paths = [videos[k] for k in ("h264", "odd_size", "portrait", "image")]
    from lmm_vqa.explain import GenerationSettings, start_chat

    # several-token level words: the compiled model also continues from the prompt's KV cache
    eager = load_scorer(checkpoint("llava", False), frames="fps:5", max_frames=3, compile="off")
    compiled = load_scorer(checkpoint("llava", False), frames="fps:5", max_frames=3, compile="on")
    assert compiled.exact
    torch._dynamo.reset()
    ref = [r["score"] for r in eager.score_paths(paths, batch_size=4)]
    for bs in (4, 3):  # batch shapes vary: a short last batch must not fail or change scores
        got = [r["score"] for r in compiled.score_paths(paths, batch_size=bs)]
        np.testing.assert_allclose(got, ref, atol=1e-4)
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    for bs in (2, 5):  # once warm, other batch sizes (and prompt counts) compile nothing more
        got = [r["score"] for r in compiled.score_paths(paths, batch_size=bs)]
        np.testing.assert_allclose(got, ref, atol=1e-4)
    assert counters["stats"]["unique_graphs"] == graphs
    from lmm_vqa.compilation import warmup_note, warmup_s

    assert warmup_s(compiled.model) > 0 and warmup_s(eager.model) is None  # the first call's time, compiling
    assert "torch.compile warm-up" in warmup_note(compiled.model) and warmup_note(eager.model) == ""
    answers = [start_chat(s, videos["h264"], GenerationSettings(max_new_tokens=6)).ask("q") for s in (eager, compiled)]
    assert answers[0] == answers[1]  # explain runs the language model eagerly, and gives the same answer

    from lmm_vqa.compilation import is_compiled, resolve

    assert is_compiled(compiled.model) and not is_compiled(eager.model)
    assert not is_compiled(load_scorer(checkpoint("llava"), device="cpu").model), "auto: off on the CPU"
    assert resolve("auto", torch.device("cuda", 0)) and resolve(None, "cuda") and not resolve("auto", "cpu")


@pytest.mark.parametrize("family", ["mplug_owl2", "qwen2_vl", "fast_vlm"])
def test_compiled_scoring_agrees_with_eager_in_other_families(family, checkpoint, videos, tmp_path, monkeypatch):
    """Layer-by-layer compile in the other families' language models: mPLUG-Owl2's modality-adaptive layers,
    Qwen2-VL's 3D rotary positions, FastVLM's Qwen2. Every layer compiles and the scores stay eager's."""
    from lmm_vqa.compilation import decoder_layers

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    paths = [videos[k] for k in ("h264", "portrait")]
    scorers = [load_scorer(checkpoint(family), frames="fps:5", max_frames=2, device="cpu", compile=c)
               for c in ("off", "on")]
    layers = decoder_layers(scorers[1].model)
    assert len(layers) > 1 and all(getattr(layer, "_lmm_vqa_compiled", False) for layer in layers)
    scores = [[r["score"] for r in s.score_paths(paths, batch_size=2)] for s in scorers]
    np.testing.assert_allclose(scores[1], scores[0], atol=1e-4)


def test_compiled_bf16_scores_round_as_eager(checkpoint, videos, tmp_path, monkeypatch):
    """In bf16, the compiled language model rounds its fused kernels' intermediates where eager rounds each op
    (Inductor's emulate_precision_casts): on this CPU the scores come out equal to eager's; without that option
    they differ by ~3e-3 here (0.0054 on an H200 on the trained demo model)."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    paths = [videos[k] for k in ("h264", "portrait")]
    scores = [[r["score"] for r in load_scorer(checkpoint("llava"), frames="fps:5", max_frames=3, dtype="bf16",
                                               device="cpu", compile=c).score_paths(paths, batch_size=4)]
              for c in ("off", "on")]
    np.testing.assert_allclose(scores[1], scores[0], atol=1e-6)


def test_crops_average_squares_spread_over_each_frame(checkpoint, videos):
    from lmm_vqa.views import spread_squares

    frame = np.arange(50 * 78 * 3, dtype=np.uint8).reshape(50, 78, 3)
    squares = spread_squares(frame, 3)
    assert [s.shape for s in squares] == [(50, 50, 3)] * 3
    assert np.array_equal(squares[0], frame[:, :50]) and np.array_equal(squares[2], frame[:, 28:])
    assert np.array_equal(spread_squares(frame, 1)[0], frame[:, 14:64])  # one: the centre, as the processor keeps
    assert np.array_equal(spread_squares(frame.transpose(1, 0, 2), 2)[1], frame.transpose(1, 0, 2)[28:])  # portrait

    centre, spread = load_scorer(checkpoint("llava")), load_scorer(checkpoint("llava"), crops=3)
    row = spread.score_video(videos["odd_size"])  # 50 x 78
    frames = centre.load(videos["odd_size"]).frames
    # by hand: every square scored alone as a frame of its own, averaged over a frame's squares, then over frames
    per_frame = np.stack([np.mean([centre.frames_results(sq[None])[0] for sq in spread_squares(f, 3)], 0)
                          for f in frames])
    assert row["score"] == pytest.approx(centre.summarise(per_frame.mean(0))["score"], abs=1e-5)
    assert row["frame_scores"] == pytest.approx([centre.summarise(p)["score"] for p in per_frame], abs=1e-5)
    assert row["score"] != pytest.approx(centre.score_video(videos["odd_size"])["score"], abs=1e-4)
    with pytest.raises(ValueError, match="crops"):  # Qwen-VL sees the whole frame already
        load_scorer(checkpoint("qwen2_vl"), crops=3)
    with pytest.raises(ValueError, match="crops"):
        ScorerConfig(crops=3, mode="clip")
