"""mPLUG-Owl2, implemented here: held to the original code's outputs on a checkpoint that code saved
(tests/data/mplug_owl2/, made by make_reference.py there), loaded as the hub checkpoints are published."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lmm_vqa.checkpoints import from_pretrained, load_scorer

REF = Path(__file__).parent / "data" / "mplug_owl2"
CKPT = REF / "checkpoint"
REFERENCE = json.loads((REF / "reference.json").read_text())
CASES = {c["name"]: c for c in REFERENCE["cases"]}


def _images(case):
    return [np.array(Image.open(REF / "images" / f).convert("RGB")) for f in case["images"]]


@pytest.fixture(scope="module")
def original():
    from transformers import AutoProcessor

    model = from_pretrained(str(CKPT), dtype=torch.float32).eval()
    return model, AutoProcessor.from_pretrained(CKPT)


def test_the_published_format_loads_every_key(original):
    """config.json as the original wrote it (model_type mplug_owl2, visual_config), .bin weights, the
    SentencePiece tokenizer.model: every stored tensor lands in the model, unchanged, nothing left over."""
    model, processor = original
    stored = torch.load(CKPT / "pytorch_model.bin", weights_only=True)
    state = model.state_dict()
    assert set(state) == set(stored)
    assert all(torch.equal(state[k], stored[k]) for k in stored)
    assert type(model).__name__ == "MPLUGOwl2ForConditionalGeneration"
    assert type(processor).__name__ == "MPLUGOwl2Processor" and processor.image_seq_length == 9  # 8 queries + eos


@pytest.mark.parametrize("name", sorted(CASES))
def test_level_probabilities_match_the_original(original, name):
    """Images of several sizes and aspect ratios, the aesthetics prompt, and the video prompt (three
    frames behind one <|image|> in Q-Align, one placeholder per frame here): the same token ids, and the
    five level probabilities within 1e-4 of the original's in fp32."""
    model, processor = original
    case = CASES[name]
    images = _images(case)
    text = case["prompt"].replace("<|image|>", "<|image|>" * len(images))
    inputs = processor(text=[text], images=images, return_tensors="pt")
    expected = [x for t in case["input_ids"] for x in ([t] * processor.image_seq_length * len(images) if t == -200
                                                      else [t])]
    assert inputs["input_ids"][0].tolist() == expected
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1, REFERENCE["level_ids"]]
    probs = torch.softmax(logits.double(), -1).numpy()
    np.testing.assert_allclose(probs, case["level_probs"], atol=1e-4, rtol=0)


def test_the_scorer_scores_as_q_align_does():
    """Through `lmm-vqa`'s own path (prompt from the chat template, level words by the resolver, the
    image read from disk): Q-Align's prompt text, the original's level ids, its probabilities."""
    scorer = load_scorer(str(CKPT), device="cpu")
    image = CASES["image_landscape"]
    assert scorer.render_prompt(1) == image["prompt"]
    assert [ids[0] for ids in scorer.level_ids][::-1] == REFERENCE["level_ids"]  # the scorer: worst to best
    row = scorer.score_video(REF / "images" / image["images"][0])
    assert row["status"] == "ok", row["error"]
    got = [row[f"p_{w}"] for w in REFERENCE["levels"]]
    np.testing.assert_allclose(got, image["level_probs"], atol=1e-4)
    expected_score = float(np.dot(image["level_probs"], [5, 4, 3, 2, 1]))
    assert row["score"] == pytest.approx(expected_score, abs=5e-4)

    video = CASES["video_3_frames"]
    clip = load_scorer(str(CKPT), device="cpu", mode="clip")
    frames = _images(video)
    assert clip.prompt_for(frames) == video["prompt"].replace("<|image|>", "<|image|>" * 3)
    probs = clip.level_probs([clip.prompt_for(frames)], frames)[0]
    np.testing.assert_allclose(probs[::-1], video["level_probs"], atol=1e-4)  # the scorer orders worst to best


def test_padded_batches_score_as_single_prompts(original):
    """Prompts of different lengths (one frame, three frames) left-padded into one batch give each
    prompt's own probabilities: positions skip the padding and the modality mask follows the images."""
    scorer = load_scorer(str(CKPT), device="cpu", mode="clip")
    one, three = _images(CASES["image_odd"]), _images(CASES["video_3_frames"])
    texts = [scorer.prompt_for(one), scorer.prompt_for(three)]
    batched = scorer.level_probs(texts, one + three)
    alone = np.concatenate([scorer.level_probs([texts[0]], one), scorer.level_probs([texts[1]], three)])
    np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_generation_with_the_cache_matches_recomputing(original):
    """explain's path: generate() decodes with the KV cache (the visual tokens only in the prompt); the
    greedy answer equals re-running the whole sequence for every token."""
    model, processor = original
    case = CASES["image_square"]
    inputs = processor(text=[case["prompt"]], images=_images(case), return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=6, do_sample=False, pad_token_id=0)[0, -6:].tolist()
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        by_hand = []
        for _ in range(6):
            nxt = model(input_ids=ids, attention_mask=mask, pixel_values=inputs["pixel_values"],
                        use_cache=False).logits[0, -1].argmax().item()
            by_hand.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
            mask = torch.cat([mask, torch.ones(1, 1, dtype=mask.dtype)], 1)
    assert generated == by_hand


def test_sharded_bin_weights_load_as_the_hub_repos_hold_them(tmp_path):
    """OneAlign's hub repo holds its weights as pytorch_model-0000N-of-0000M.bin shards and an index."""
    folder = tmp_path / "sharded"
    shutil.copytree(CKPT, folder)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    (folder / "pytorch_model.bin").unlink()
    keys = sorted(state)
    shards = {"pytorch_model-00001-of-00002.bin": keys[::2], "pytorch_model-00002-of-00002.bin": keys[1::2]}
    for name, part in shards.items():
        torch.save({k: state[k] for k in part}, folder / name)
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
             "weight_map": {k: name for name, part in shards.items() for k in part}}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    loaded = from_pretrained(str(folder), dtype=torch.float32).state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_multiway_norm_equals_running_both_copies(dtype):
    """The norm computes the shared normalisation once: bit for bit what each copy gives on its own tokens."""
    from lmm_vqa.models.mplug_owl2.modeling_mplug_owl2 import MPLUGOwl2MultiwayRMSNorm

    norm = MPLUGOwl2MultiwayRMSNorm(16, 1e-6).to(dtype)
    with torch.no_grad():
        for copy in norm.multiway:
            copy.weight.normal_()
    x = torch.randn(2, 5, 16, dtype=dtype) * 3
    visual = torch.tensor([[False, True, True, False, False], [True, False, False, False, True]])
    expected = torch.where(visual[..., None], norm.multiway[1](x), norm.multiway[0](x))
    assert torch.equal(norm(x, visual), expected) and torch.equal(norm(x, None), norm.multiway[0](x))


def test_weights_that_do_not_fit_are_named(tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(CKPT, folder)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    del state["model.layers.0.self_attn.k_proj.multiway.1.weight"]
    state["model.extra_head.weight"] = torch.zeros(2)
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"missing keys.*k_proj\.multiway\.1\.weight.*unexpected keys.*extra_head"):
        from_pretrained(str(folder))


class _NotATensor:
    pass


def test_a_pickle_that_could_run_code_is_refused(tmp_path):
    folder = tmp_path / "unsafe"
    shutil.copytree(CKPT, folder)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state["payload"] = _NotATensor()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="could run code"):
        from_pretrained(str(folder))


def test_a_remote_code_architecture_we_do_not_implement_says_so(tmp_path):
    from lmm_vqa.checkpoints import describe

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "internvl_chat", "architectures": ["InternVLChatModel"],
                                                      "auto_map": {"AutoModel": "modeling_internvl_chat.InternVLChatModel"}}))
    with pytest.raises(ValueError, match="internvl_chat.*not a family lmm-vqa supports.*mplug_owl2"):
        describe(str(tmp_path))
