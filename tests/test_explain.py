import json

import pytest
from conftest import FAMILIES

from lmm_vqa import load_scorer
from lmm_vqa.cli import main
from lmm_vqa.explain import GenerationSettings, default_question, start_chat


@pytest.mark.parametrize("family", FAMILIES)
def test_explain_streams_text_and_is_deterministic_at_temperature_zero(family, checkpoint, videos):
    scorer = load_scorer(checkpoint(family), frames="fps:2", max_frames=2)
    pieces = list(scorer.explain_stream(videos["h264"], "Is it blurry?", max_new_tokens=8))
    assert pieces and all(isinstance(p, str) for p in pieces)
    answer = scorer.explain(videos["h264"], "Is it blurry?", max_new_tokens=8)
    assert answer == "".join(pieces).strip()  # greedy: the same answer twice
    # The answer comes from the model's tokens: it decodes back from the tokenizer's vocabulary.
    assert len(scorer.tokenizer(answer, add_special_tokens=False)["input_ids"]) >= 1


def test_chat_keeps_history_and_decodes_the_video_once(checkpoint, videos, monkeypatch):
    scorer = load_scorer(checkpoint("qwen2_vl"), frames="fps:2", max_frames=2)
    chat = start_chat(scorer, videos["vp9"], GenerationSettings(max_new_tokens=5))
    monkeypatch.setattr(scorer, "load", lambda path: pytest.fail("decoded again"))
    first = chat.ask("How is the exposure?")
    chat.ask("And the noise?")
    assert [q for q, _ in chat.history] == ["How is the exposure?", "And the noise?"]
    prompt = scorer.processor.apply_chat_template(chat.messages("third"), add_generation_prompt=True,
                                                  tokenize=False)
    assert "How is the exposure?" in prompt and first in prompt and "And the noise?" in prompt
    assert prompt.count("<|image_pad|>") == 2  # the frames appear once, in the first turn


def test_sampling_settings_are_used(checkpoint, videos):
    scorer = load_scorer(checkpoint("llava"), frames="fps:1")
    a = scorer.explain(videos["h264"], "q", max_new_tokens=12, temperature=1.5, top_p=1.0)
    b = scorer.explain(videos["h264"], "q", max_new_tokens=12, temperature=1.5, top_p=1.0)
    greedy = scorer.explain(videos["h264"], "q", max_new_tokens=12)
    assert len({a, b, greedy}) >= 2  # sampling from a random model varies


def test_cli_json_with_score(checkpoint, videos, capsys):
    code = main(["explain", str(videos["h264"]), "--model", str(checkpoint("llava_onevision")), "--json",
                 "--with-score", "--max-new-tokens", "6", "--question", "Any blocking?"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["question"] == "Any blocking?" and isinstance(out["answer"], str)
    row = load_scorer(checkpoint("llava_onevision")).score_video(videos["h264"])  # the scoring path, the same frames
    assert out["score"] == pytest.approx(row["score"], abs=1e-5)
    assert out["levels"] == pytest.approx({w: row[f"p_{w}"] for w in out["levels"]}, abs=1e-5)


def test_cli_streams_and_chats(checkpoint, videos, capsys, monkeypatch):
    answers = iter(["and the colours?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert main(["explain", str(videos["av1"]), "--model", str(checkpoint("llava")), "--chat", "--with-score",
                 "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    scorer = load_scorer(checkpoint("llava"))
    chat = start_chat(scorer, videos["av1"], GenerationSettings(max_new_tokens=4))
    first, second = chat.ask(default_question()), chat.ask("and the colours?")
    assert out.startswith(first) and f"\n{second}\n" in out  # both turns streamed, the second after the first
    assert f"score {scorer.score_video(videos['av1'])['score']:.3f}" in out


def test_bad_video_is_a_clear_error(checkpoint, videos, capsys):
    assert main(["explain", str(videos["not_video"]), "--model", str(checkpoint("llava"))]) == 2
    assert "not a decodable video" in capsys.readouterr().err
    scorer = load_scorer(checkpoint("llava"))
    with pytest.raises(ValueError, match="empty file"):
        scorer.explain(videos["zero_bytes"])


def test_adapter_off_without_an_adapter_is_the_same_model(checkpoint, videos):
    scorer = load_scorer(checkpoint("llava"))
    on = start_chat(scorer, videos["h264"], GenerationSettings(max_new_tokens=6)).ask("q")
    off = start_chat(scorer, videos["h264"], GenerationSettings(max_new_tokens=6), adapter="off").ask("q")
    assert on == off
    with pytest.raises(ValueError, match="adapter"):
        start_chat(scorer, videos["h264"], adapter="maybe").ask("q")


def test_adapter_off_answers_with_the_base_model(tmp_path, checkpoint, synth_vdpve, capsys):
    """A fine-tuned folder: --adapter off gives exactly the base model's greedy answer."""
    from lmm_vqa.cli import main

    out = tmp_path / "ft"
    assert main(["train", "synthetic_vdpve", f"model={checkpoint('llava')}", f"output_dir={out}",
                 f"train_labels={synth_vdpve / 'train/labels.txt'}", "val_labels=null", "max_steps=3", "lr=5e-2",
                 "batch_size=4", "num_workers=0", "gradient_checkpointing=false", "max_frames=1"]) == 0
    video = str(next((synth_vdpve / "test").glob("*.mp4")))
    answers = {}
    for name, args in {"base": ["--model", str(checkpoint("llava"))], "off": ["--model", str(out), "--adapter", "off"],
                       "on": ["--model", str(out), "--adapter", "on"]}.items():
        capsys.readouterr()
        assert main(["explain", video, *args, "--json", "--with-score", "--max-new-tokens", "8"]) == 0
        answers[name] = json.loads(capsys.readouterr().out)
    assert answers["off"]["answer"] == answers["base"]["answer"]
    assert answers["on"]["score"] != answers["base"]["score"], "the adapter is on when asked"


def test_a_hive_model_answers_with_one_stated_adapter_whatever_scored_last(tmp_path, checkpoint, videos, capsys):
    from lmm_vqa.explain import score_frames
    from lmm_vqa.testing import build_hive_folder

    hive_dir = build_hive_folder(checkpoint("llava"), tmp_path / "hive", lora_std=0.5)
    settings = GenerationSettings(max_new_tokens=8)
    alone = {part: start_chat(load_scorer(hive_dir / part), videos["h264"], settings).ask("q")
             for part in ("coarse", "fine")}
    assert alone["coarse"] != alone["fine"], "the adapters must answer differently for this test to tell"
    hive = load_scorer(hive_dir)
    assert hive.explain_with == "coarse"
    chat = start_chat(hive, videos["h264"], settings)
    first = chat.ask("q")
    score_frames(hive, chat.frames)  # runs both adapters, the fine one last
    second = start_chat(hive, videos["h264"], settings).ask("q")
    assert first == second == alone["coarse"]
    capsys.readouterr()
    assert main(["explain", str(videos["h264"]), "--model", str(hive_dir), "--json", "--with-score",
                 "--max-new-tokens", "8", "--question", "q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["adapter"] == "coarse" and out["answer"] == alone["coarse"]
