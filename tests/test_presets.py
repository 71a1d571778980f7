"""Presets of published quality models: data files that say how the authors score, chosen by hub id."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmm_vqa.checkpoints import describe, load_scorer, run_settings
from lmm_vqa.cli import main
from lmm_vqa.presets import get_preset, preset_for, presets

MPLUG = Path(__file__).parent / "data" / "mplug_owl2" / "checkpoint"  # saved by the original mPLUG-Owl2 code


def test_every_shipped_preset_is_complete_and_resolves(checkpoint):
    """Each preset names a supported family and builds a valid scoring config; on a checkpoint of its family
    (for mPLUG-Owl2 the original code's own), its level words resolve (to one token each where the tiny
    vocabulary has the words whole, as the real ones do)."""
    from lmm_vqa.backbones import BACKBONES

    assert len(presets()) >= 11
    for preset in presets().values():
        assert preset.paper and preset.code and preset.tested, preset.name  # no models: a variant, by --preset only
        assert preset.family in BACKBONES, preset.name
        folder = str(MPLUG) if preset.family == "mplug_owl2" else checkpoint(preset.family)
        scorer = load_scorer(folder, device="cpu", preset=preset.name)
        assert scorer.config.mode == preset.scorer["mode"]
        if scorer.config.method == "answer":
            continue
        assert all(scorer.level_ids)
        if set(scorer.levels.words) == {"bad", "poor", "fair", "good", "excellent"}:  # single tokens in the tiny vocabs
            assert all(len(ids) == 1 for ids in scorer.level_ids), preset.name


# Q-Align's scorer.py and DeQA-Score's scorer.py build these prompts by hand (one <|image|> per image).
AUTHORS_PROMPTS = {
    "one-align": "USER: How would you rate the quality of this video?\n<|image|>\nASSISTANT: The quality of the video is",
    "q-align-iqa": "USER: How would you rate the quality of this image?\n<|image|>\nASSISTANT: The quality of the image is",
    "q-align-aesthetic": "USER: How would you rate the aesthetics of this image?\n<|image|>\n"
                         "ASSISTANT: The aesthetics of the image is",
    "deqa-score": "USER: How would you rate the quality of this image?\n<|image|>\nASSISTANT: The quality of the image is",
}


@pytest.mark.parametrize("name", sorted(AUTHORS_PROMPTS))
def test_the_prompt_that_reaches_the_model_is_the_authors(name):
    scorer = load_scorer(str(MPLUG), device="cpu", preset=name)
    frames = 3 if scorer.config.mode == "clip" else 1  # the video scorer: every keyframe behind the one question
    assert scorer.prompt_for([None] * frames) == AUTHORS_PROMPTS[name].replace("<|image|>", "<|image|>" * frames)


def test_a_preset_is_found_by_hub_id_or_hub_cache_folder():
    assert preset_for("q-future/one-align").name == "one-align"
    assert preset_for("Q-Future/One-Align").name == "one-align"
    cache = "/home/me/.cache/huggingface/hub/models--zhiyuanyou--DeQA-Score-Mix3/snapshots/0123abc"
    assert preset_for(cache).name == "deqa-score"
    assert preset_for("llava-hf/llava-1.5-7b-hf") is None and preset_for("/data/one-align") is None
    with pytest.raises(ValueError, match="unknown preset 'onealign'; known presets: .*one-align"):
        get_preset("onealign")


def test_a_folders_own_scorer_json_and_flags_win_over_the_preset(tmp_path):
    folder = tmp_path / "models--q-future--one-align" / "snapshots" / "abc"
    shutil.copytree(MPLUG, folder)
    ckpt = describe(str(folder))
    assert ckpt.preset == "one-align"
    settings = run_settings(ckpt)
    assert settings["preset"] == "one-align" and settings["settings"]["mode"] == "clip"
    assert run_settings(ckpt, mode="frame")["settings"]["mode"] == "frame"
    assert run_settings(ckpt, prompt="score_frame")["settings"]["image_prompt"] is None  # one prompt for all
    (folder / "scorer.json").write_text(json.dumps({"mode": "frame", "frames": "uniform:4"}))
    assert run_settings(ckpt)["settings"]["frames"] == "uniform:4"


def _hub_cache(root: Path, repo: str, source: Path) -> None:
    """A Hugging Face hub cache holding `source` as `repo` at revision main, laid out as the hub client
    writes it (blobs, a snapshot of links to them, refs/main)."""
    base = root / f"models--{repo.replace('/', '--')}"
    rev = "0" * 40
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(rev)
    snapshot = base / "snapshots" / rev
    snapshot.mkdir(parents=True)
    (base / "blobs").mkdir()
    for i, f in enumerate(sorted(p for p in source.rglob("*") if p.is_file())):  # subfolders too
        blob = base / "blobs" / f"{i:040x}"
        shutil.copy(f, blob)
        link = snapshot / f.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)


def _score_offline(cache: Path, model: str, video, out: Path) -> subprocess.CompletedProcess:
    """`lmm-vqa score VIDEO --model MODEL` in a fresh process, the hub cache `cache` only (offline)."""
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "lmm_vqa.cli", "score", str(video), "--model", model, "--out",
                           str(out), "--device", "cpu"], capture_output=True, text=True, env=env, timeout=600)


def test_score_with_a_hub_id_scores_as_its_authors_with_no_flags(tmp_path, videos):
    """`lmm-vqa score video.mp4 --model q-future/one-align`, the checkpoint in the local hub cache (offline):
    Q-Align's video scorer (keyframes at 1 fps in one prompt, the video prompt), with nothing else said."""
    cache = tmp_path / "hub"
    _hub_cache(cache, "q-future/one-align", MPLUG)
    out = tmp_path / "r.jsonl"
    result = _score_offline(cache, "q-future/one-align", videos["h264"], out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'one-align' preset" in result.stderr
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["model"] == "q-future/one-align" and record["preset"] == "one-align"
    assert record["settings"]["mode"] == "clip" and record["settings"]["question"].endswith("this video?")
    from lmm_vqa.results import read_rows

    row = read_rows(out)[0]
    expected = load_scorer(str(MPLUG), device="cpu", preset="one-align").score_video(videos["h264"])
    assert row["num_frames"] == expected["num_frames"] == 2  # 2 s at 1 fps
    np.testing.assert_allclose(row["score"], expected["score"], atol=1e-5)


def test_models_lists_the_presets(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in presets()) and "q-future/one-align" in out
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {p["name"] for p in listed} == set(presets()) and all("notes" in p for p in listed)


def test_q_realign_scores_the_ids_its_scorer_builds(checkpoint, videos):
    """Q-ReAlign's scorer.py: the user turn (every frame's image, then the prompt) through the chat template
    with thinking off, then the tokens of ' ' + stem appended; level ids the first token of ' ' + word. Built
    here its way with the same processor, and compared with what lmm-vqa's preset sends."""
    scorer = load_scorer(checkpoint("qwen3_5"), device="cpu", preset="q-realign-mini")
    processor, tok = scorer.processor, scorer.processor.tokenizer
    decoded = scorer.load(videos["h264"])
    frames = list(decoded.frames)
    assert len(frames) == 8 and max(frames[0].shape[:2]) <= 448
    ours = processor(text=[scorer.prompt_for(frames)], images=frames, return_tensors="pt")["input_ids"][0].tolist()

    user = [{"type": "image"} for _ in frames] + [{"type": "text", "text": "Can you rate the quality of this video?"}]
    text = processor.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                         tokenize=False, enable_thinking=False)
    theirs = processor(text=[text], images=frames, return_tensors="pt")["input_ids"][0].tolist()
    theirs += tok(" " + "The quality of the video is", add_special_tokens=False)["input_ids"]
    assert ours == theirs
    # an image: the IQA task's first prompt and stem, the image as it is
    from lmm_vqa.video import load_frames

    image = load_frames(videos["image"]).frames[0]
    ours = processor(text=[scorer.prompt_for([image], still=True)], images=[image], return_tensors="pt")
    user = [{"type": "image"}, {"type": "text", "text": "Can you rate the quality of this picture?"}]
    text = processor.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                         tokenize=False, enable_thinking=False)
    theirs = processor(text=[text], images=[image], return_tensors="pt")["input_ids"][0].tolist()
    assert ours["input_ids"][0].tolist() == theirs + tok(" The quality of the image is", add_special_tokens=False)["input_ids"]
    names = ["excellent", "good", "fair", "poor", "bad"]  # theirs: best first
    assert [ids[0] for ids in scorer.level_ids][::-1] == [tok(" " + w, add_special_tokens=False)["input_ids"][0]
                                                          for w in names]


def test_linspace_sampling_and_frame_shrinking_are_q_realigns():
    from PIL import Image

    from lmm_vqa.video import Sampling, select_indices, shrink

    for n in (250, 31, 8):
        expected = [int(round(i)) for i in np.linspace(0, max(n - 1, 0), 8)]
        assert select_indices(n, 25.0, Sampling("linspace", 8, max_frames=8)).tolist() == expected
    frames = np.random.default_rng(0).integers(0, 255, (2, 720, 1280, 3), dtype=np.uint8)
    small = shrink(frames, 448)
    s = 448 / 1280
    for got, frame in zip(small, frames):
        img = Image.fromarray(frame)
        assert np.array_equal(got, np.asarray(img.resize((max(1, int(1280 * s)), max(1, int(720 * s))))))
    assert shrink(frames[:, :300, :400], 448).shape == (2, 300, 400, 3)  # small frames stay as they are


def test_q_sit_scores_the_ids_its_script_builds(checkpoint, videos):
    """Q-SiT's scoring script: the question, then the image, through the chat template; the ids of
    'The quality of this image is ' (trailing space) appended; level ids the first token of each
    capitalised word. Built here its way with the same processor, and compared with the preset's."""
    from lmm_vqa.video import load_frames

    scorer = load_scorer(checkpoint("llava_onevision"), device="cpu", preset="q-sit-mini")
    processor, tok = scorer.processor, scorer.processor.tokenizer
    frame = load_frames(videos["image"]).frames[0]
    ours = processor(text=[scorer.prompt_for([frame])], images=[frame], return_tensors="pt")["input_ids"][0].tolist()

    question = get_preset("q-sit-mini").scorer["question"]
    conversation = [{"role": "user", "content": [{"type": "text", "text": question}, {"type": "image"}]}]
    prompt = processor.apply_chat_template(conversation, add_generation_prompt=True)
    theirs = processor(images=frame, text=prompt, return_tensors="pt")["input_ids"][0].tolist()
    theirs += tok("The quality of this image is ")["input_ids"]
    assert ours == theirs
    toks = ["Excellent", "Good", "Fair", "Poor", "Bad"]
    assert [ids[0] for ids in scorer.level_ids][::-1] == [ids[0] for ids in tok(toks)["input_ids"]]


def test_visualquality_r1_gets_the_prompt_its_authors_build(checkpoint, videos):
    """VisualQuality-R1's inference example: the image, then PROMPT + the answer-format sentence, through the
    chat template with add_vision_id; no answer start appended (the model reasons first)."""
    from lmm_vqa.video import load_frames

    scorer = load_scorer(checkpoint("qwen2_5_vl"), device="cpu", preset="visualquality-r1")
    prompt = ("You are doing the image quality assessment task. Here is the question: What is your overall rating "
              "on the quality of this picture? The rating should be a float between 1 and 5, rounded to two decimal "
              "places, with 1 representing very poor quality and 5 representing excellent quality. First output the "
              "thinking process in <think> </think> tags and then output the final answer with only one score in "
              "<answer> </answer> tags.")
    message = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    theirs = scorer.processor.apply_chat_template(message, tokenize=False, add_generation_prompt=True,
                                                  add_vision_id=True)
    frame = load_frames(videos["image"]).frames[0]
    assert scorer.prompt_for([frame]) == theirs and "Picture 1: " in theirs
    assert type(scorer).__name__ == "AnswerScorer" and scorer.generate_kwargs["do_sample"]


def test_an_image_under_a_video_preset_is_asked_about_as_an_image():
    """OneAlign's preset scores videos in clip mode with the video prompt, and an image with Q-Align's image
    prompt, as its image scorer does: the original code's probabilities for that image (tests/data)."""
    ref = json.loads((MPLUG.parent / "reference.json").read_text())
    case = next(c for c in ref["cases"] if c["name"] == "image_landscape")
    scorer = load_scorer(str(MPLUG), device="cpu", preset="one-align")
    assert scorer.config.mode == "clip"
    assert scorer.prompt_for([None], still=True) == AUTHORS_PROMPTS["q-align-iqa"]
    row = scorer.score_video(MPLUG.parent / "images" / case["images"][0])
    np.testing.assert_allclose([row[f"p_{w}"] for w in ref["levels"]], case["level_probs"], atol=1e-4)


def test_vq_insight_feeds_the_video_its_authors_demo_builds(checkpoint, videos):
    """VQ-Insight's demo: a system turn, then the video and the question, through the chat template;
    qwen_vl_utils samples (2 fps, at least 4, an even count) and resizes the frames (multiples of 28 px);
    the processor makes the video tensor. The same ids, video tensor and grid reach the model here."""
    qwen_vl_utils = pytest.importorskip("qwen_vl_utils")
    import torch

    scorer = load_scorer(checkpoint("qwen2_5_vl"), device="cpu", preset="vq-insight")
    preset = get_preset("vq-insight").scorer
    path = str(videos["h264"])  # 2 s at 10 fps: 4 frames
    messages = [{"role": "system", "content": [{"type": "text", "text": preset["system_prompt"]}]},
                {"role": "user", "content": [{"type": "video", "video": path},
                                             {"type": "text", "text": preset["question"]}]}]
    text = scorer.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    _, video_inputs = qwen_vl_utils.process_vision_info([messages])
    # the demo's transformers 4 processor took 2 fps when none was given; transformers 5 needs it said
    theirs = scorer.processor(text=[text], videos=video_inputs, padding=True, return_tensors="pt", fps=2.0)
    frames = scorer.load(path).frames
    assert frames.shape[0] == video_inputs[0].shape[0] == 4 and frames.shape[1:3] == tuple(video_inputs[0].shape[2:])
    assert np.array_equal(frames, video_inputs[0].permute(0, 2, 3, 1).numpy())  # same frames, same resizing
    video = scorer.prompt_images(frames)
    assert len(video) == 1 and np.array_equal(video[0], frames)  # one item: the video
    ours = scorer.encode([scorer.prompt_for(video)], video)
    assert scorer.prompt_for(video) == text
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["video_grid_thw"], theirs["video_grid_thw"])
    torch.testing.assert_close(ours["pixel_values_videos"], theirs["pixel_values_videos"])
    torch.testing.assert_close(ours["second_per_grid_ts"].float(), torch.as_tensor(theirs["second_per_grid_ts"]).float())
    from lmm_vqa.explain import start_chat

    chat = start_chat(scorer, path)  # explain asks about the same video input, after the same system turn
    asked = scorer.processor.apply_chat_template(chat.messages("Why?"), tokenize=False, add_generation_prompt=True)
    assert asked == text.replace(preset["question"], "Why?")
    assert isinstance(chat.ask("Why?"), str)


def test_a_hub_subfolder_checkpoint_scores_with_its_preset(tmp_path, checkpoint, videos):
    """`--model ByteDance/Q-Insight/vqinsight-naturalvideo`: a checkpoint in a subfolder of a hub model, found in
    the local hub cache offline; its preset applies (video input, the 0-100 answer read from the first tag)."""
    from lmm_vqa.testing import rig_greedy_answer

    scorer = load_scorer(checkpoint("qwen2_5_vl"), device="cpu", preset="vq-insight")
    video = scorer.prompt_images(scorer.load(videos["h264"]).frames)
    source = tmp_path / "repo"
    rig_greedy_answer(checkpoint("qwen2_5_vl"), source / "vqinsight-naturalvideo", scorer.prompt_for(video),
                      "<think>soft</think><answer>73.5</answer>")
    (source / "README.md").write_text("the repo's other files\n")
    cache = tmp_path / "hub"
    _hub_cache(cache, "ByteDance/Q-Insight", source)
    out = tmp_path / "r.jsonl"
    result = _score_offline(cache, "ByteDance/Q-Insight/vqinsight-naturalvideo", videos["h264"], out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'vq-insight' preset" in result.stderr
    from lmm_vqa.results import read_rows

    row = read_rows(out)[0]
    assert row["status"] == "ok" and float(row["score_01"]) == pytest.approx(0.735)
    assert float(row["score"]) == pytest.approx(1 + 4 * 0.735) and row["rationale"] == "soft"
    bad = _score_offline(cache, "ByteDance/Q-Insight/vqinsight-aigcvideo", videos["h264"], tmp_path / "x.csv")
    assert bad.returncode == 2 and "vqinsight-aigcvideo" in bad.stderr and "Traceback" not in bad.stderr


def test_videos_of_different_lengths_batch_as_they_score_alone(checkpoint, videos):
    """video_input: each prompt carries its own video, so videos of 4 and 2 frames (and an image) share a batch
    and each gets its own level probabilities."""
    scorer = load_scorer(checkpoint("qwen2_5_vl"), device="cpu", mode="clip", frames="qwen:2", max_frames=768,
                         video_input=True, system_prompt="Rate it.")
    paths = [videos[k] for k in ("h264", "one_frame", "image", "portrait")]
    together = list(scorer.score_paths(paths, batch_size=4))
    assert [r["num_frames"] for r in together] == [4, 2, 2, 4]
    for path, row in zip(paths, together):
        alone = scorer.score_video(path, batch_size=1)
        assert row["score"] == pytest.approx(alone["score"], abs=1e-4), path


def test_qwen_sampling_and_resizing_are_qwen_vl_utils():
    """`qwen:F` frames and the video frame size equal qwen-vl-utils' own (smart_nframes, then linspace
    rounded; smart_resize within its pixel budget) over many lengths, frame rates and sizes."""
    vp = pytest.importorskip("qwen_vl_utils.vision_process")
    import torch

    from lmm_vqa.video import Sampling, qwen_video_size, select_indices

    for total in (2, 3, 4, 7, 20, 49, 50, 250, 1001, 4000):
        for fps in (8, 23.976, 25, 30, 60):
            for max_frames in (768, 16):
                theirs_n = vp.smart_nframes({"fps": 2.0, "max_frames": max_frames}, total_frames=total, video_fps=fps)
                theirs = torch.linspace(0, total - 1, theirs_n).round().long().numpy()
                ours = select_indices(total, fps, Sampling.parse("qwen:2", max_frames))
                assert np.array_equal(ours, theirs), (total, fps, max_frames)
    budget = vp.MODEL_SEQ_LEN * 28 * 28 * 0.9
    for h, w in ((720, 1280), (1080, 1920), (128, 224), (2160, 3840), (480, 360), (33, 1000)):
        for n in (4, 20, 300):
            high = max(min(768 * 28 * 28, budget / n * 2), int(128 * 28 * 28 * 1.05))
            assert qwen_video_size(h, w, n) == vp.smart_resize(h, w, 28, 128 * 28 * 28, high), (h, w, n)
