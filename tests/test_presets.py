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
    for i, f in enumerate(sorted(source.iterdir())):
        blob = base / "blobs" / f"{i:040x}"
        shutil.copy(f, blob)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / f.name)


def test_score_with_a_hub_id_scores_as_its_authors_with_no_flags(tmp_path, videos):
    """`lmm-vqa score video.mp4 --model q-future/one-align`, the checkpoint in the local hub cache (offline):
    Q-Align's video scorer (keyframes at 1 fps in one prompt, the video prompt), with nothing else said."""
    cache = tmp_path / "hub"
    _hub_cache(cache, "q-future/one-align", MPLUG)
    out = tmp_path / "r.jsonl"
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "lmm_vqa.cli", "score", str(videos["h264"]), "--model",
                             "q-future/one-align", "--out", str(out), "--device", "cpu"],
                            capture_output=True, text=True, env=env, timeout=600)
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
