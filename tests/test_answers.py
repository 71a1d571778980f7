"""Scoring by the model's written answer (reasoning models such as VisualQuality-R1): tiny checkpoints rigged
so that their greedy answer is a known text, scored through the real generate() and the CLI."""

import json

import pytest

from lmm_vqa.answers import AnswerError, read_answer
from lmm_vqa.checkpoints import load_scorer
from lmm_vqa.cli import main
from lmm_vqa.results import read_rows
from lmm_vqa.testing import rig_greedy_answer

ANSWER = {"method": "answer", "question": "Rate the quality from 1 to 5.", "answer_prefix": ""}


def test_reading_answers_as_visualquality_r1_reads_them():
    assert read_answer("<think>sharp</think><answer>3.25</answer>", r"<answer>(.*?)</answer>", 1, 5) == (3.25, "sharp")
    assert read_answer("<answer>2</answer> then <answer>4.5</answer>", r"<answer>(.*?)</answer>", 1, 5)[0] == 4.5
    assert read_answer("<answer>2</answer> then <answer>4.5</answer>", r"<answer>(.*?)</answer>", 1, 5, "first")[0] == 2
    assert read_answer("I would say 3.5 overall", r"<answer>(.*?)</answer>", 1, 5)[0] == 3.5  # no tag: the whole text
    assert read_answer("<answer>score: 73.5 of 100</answer>", r"<answer>(.*?)</answer>", 0, 100)[0] == 73.5
    with pytest.raises(AnswerError, match=r"no number in the model's answer: '<answer>good</answer>'"):
        read_answer("<answer>good</answer>", r"<answer>(.*?)</answer>", 1, 5)
    with pytest.raises(AnswerError, match=r"answer 7\.5 is outside 1-5"):
        read_answer("<answer>7.5</answer>", r"<answer>(.*?)</answer>", 1, 5)


@pytest.fixture(scope="module")
def rigged(checkpoint, tmp_path_factory):
    """rigged(family, answer) -> a tiny checkpoint whose greedy answer to ANSWER's prompt is `answer`."""
    made = {}

    def get(family, answer, **settings):
        key = (family, answer, json.dumps(settings, sort_keys=True))
        if key not in made:
            base = checkpoint(family)
            prompt = load_scorer(base, device="cpu", **ANSWER, **settings).render_prompt(1)
            folder = rig_greedy_answer(base, tmp_path_factory.mktemp("rigged"), prompt, answer)
            (folder / "scorer.json").write_text(json.dumps({**ANSWER, **settings}))
            made[key] = folder
        return made[key]

    return get


@pytest.mark.parametrize("family", ["llava_onevision", "qwen2_5_vl"])
def test_a_well_formed_answer_becomes_the_score_and_its_reasoning_the_rationale(rigged, videos, family):
    folder = rigged(family, "<think>blur</think> <answer>3.25</answer>")
    row = load_scorer(folder, device="cpu").score_video(videos["image"])
    assert row["status"] == "ok", row["error"]
    assert row["score"] == pytest.approx(3.25) and row["score_01"] == pytest.approx(0.5625)
    assert row["rationale"] == "[frame 1] blur" and row["frame_scores"] == [pytest.approx(3.25)]


def test_a_clip_is_answered_once_and_a_0_to_100_scale_maps_onto_1_to_5(rigged, videos):
    folder = rigged("qwen2_5_vl", "<answer>73.5</answer>", mode="clip", answer_range=[0, 100])
    scorer = load_scorer(folder, device="cpu", frames="fps:5", max_frames=3)
    row = scorer.score_video(videos["h264"])
    assert row["status"] == "ok" and row["num_frames"] == 3
    assert row["score_01"] == pytest.approx(0.735) and row["score"] == pytest.approx(1 + 4 * 0.735)


def test_unreadable_answers_are_error_rows_that_say_what_came_back(rigged, videos, tmp_path, capsys):
    """Through the CLI: a malformed answer and an out-of-range one are error rows quoting the answer; the
    run goes on and says so (exit code 1), and the result file has the rationale column."""
    out = tmp_path / "r.csv"
    for answer, message in [("<answer>good</answer>", "no number in the model's answer: '<answer>good</answer>'"),
                            ("<answer>7.5</answer>", "answer 7.5 is outside 1-5")]:
        folder = rigged("qwen2_vl", answer)
        assert main(["score", str(videos["image"]), str(videos["h264"]), "--model", str(folder), "--out", str(out),
                     "--frames", "fps:5", "--max-frames", "2", "--overwrite", "--quiet"]) == 1
        rows = read_rows(out)
        assert [r["status"] for r in rows] == ["error", "error"] and all(message in r["error"] for r in rows)
    assert "rationale" in out.read_text().splitlines()[0] and "p_good" not in out.read_text().splitlines()[0]


def test_several_sampled_answers_are_averaged(rigged, videos):
    """samples: 3 with do_sample: three answers per prompt through generate(); this rigged model is sure of
    its answer, so all three read 4.5."""
    folder = rigged("qwen2_5_vl", "<answer>4.5</answer>", samples=3, generation={"do_sample": True, "seed": 0})
    row = load_scorer(folder, device="cpu").score_video(videos["image"])
    assert row["status"] == "ok" and row["score"] == pytest.approx(4.5)
    with pytest.raises(ValueError, match="needs samples >= 1, and do_sample"):
        load_scorer(folder, device="cpu", generation={})


def test_explain_with_score_prints_a_written_answers_score(rigged, videos, capsys):
    """explain --with-score on a model that writes its answers: the score comes from the written number."""
    folder = rigged("qwen2_5_vl", "<answer>3.25</answer>")
    assert main(["explain", str(videos["image"]), "--model", str(folder), "--with-score", "--max-new-tokens", "8"]) == 0
    assert "score 3.250 (0.562 on 0-1)" in capsys.readouterr().out
