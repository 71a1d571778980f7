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


def test_every_shipped_preset_is_complete_and_resolves():
    """Each preset names a supported family and builds a valid scoring config; on a checkpoint of its family
    (the original code's tiny mPLUG-Owl2), its level words resolve to one token each, as Q-Align takes them."""
    from lmm_vqa.backbones import BACKBONES

    assert len(presets()) >= 8
    for preset in presets().values():
        assert preset.models and preset.paper and preset.code and preset.tested, preset.name
        assert preset.family in BACKBONES, preset.name
        scorer = load_scorer(str(MPLUG), device="cpu", preset=preset.name)
        assert scorer.config.mode == preset.scorer["mode"] and all(len(ids) == 1 for ids in scorer.level_ids)


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
