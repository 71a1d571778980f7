"""checkpoints.py: what a --model is, read from its small files, and the one loading path."""

from pathlib import Path

import pytest

from lmm_vqa.checkpoints import demo_model_path, describe, load_scorer, run_settings
from lmm_vqa.hive import HiveScorer
from lmm_vqa.testing import build_hive_folder, write_video


def test_describe_tells_models_adapters_and_hive_folders_apart(tmp_path, checkpoint):
    base = checkpoint("llava")
    hive = build_hive_folder(base, tmp_path / "hive")
    plain, adapter, bundle = describe(base), describe(hive / "fine"), describe(hive)
    assert (plain.kind, plain.base, plain.adapters) == ("model", str(base), {})
    assert (adapter.kind, adapter.base, adapter.adapters) == ("adapter", str(Path(base).resolve()),
                                                             {"default": str(hive / "fine")})
    assert bundle.kind == "hive" and set(bundle.adapters) == {"coarse", "fine"}
    assert bundle.fusion_weights == {"coarse": 0.5, "fine": 0.5}
    assert describe(None).path == describe("demo").path == str(demo_model_path())
    with pytest.raises(ValueError, match="no such folder"):
        describe(str(tmp_path / "missing"))


def test_one_loading_path_for_every_kind(tmp_path, checkpoint, videos):
    hive = build_hive_folder(checkpoint("llava"), tmp_path / "hive", lora_std=0.5)
    loaded = {name: load_scorer(path) for name, path in
              {"model": checkpoint("llava"), "adapter": hive / "coarse", "hive": hive}.items()}
    assert isinstance(loaded["hive"], HiveScorer) and not isinstance(loaded["adapter"], HiveScorer)
    scores = {name: s.score_video(videos["h264"]) for name, s in loaded.items()}
    assert scores["hive"]["score_coarse"] == pytest.approx(scores["adapter"]["score"], abs=1e-5)
    assert abs(scores["adapter"]["score"] - scores["model"]["score"]) > 1e-3  # the adapter is on
    settings = run_settings(hive)
    assert set(settings["settings"]) == {"coarse", "fine"} and settings["model"] == str(hive.resolve())


@pytest.mark.parametrize("family", sorted(__import__("lmm_vqa.backbones", fromlist=["BACKBONES"]).BACKBONES))
def test_the_registry_knows_each_family_by_its_model_type(family, checkpoint):
    from transformers import AutoConfig, AutoModelForImageTextToText

    from lmm_vqa.adapters import module_roles
    from lmm_vqa.backbones import BACKBONES, family_of

    config = AutoConfig.from_pretrained(checkpoint(family))
    assert family_of(config) is BACKBONES[family]
    model = AutoModelForImageTextToText.from_config(config)
    names = {n for n, _ in model.named_modules()}
    roles = module_roles(model)
    assert {roles.vision, roles.projector, roles.language} <= names
    assert BACKBONES[family].mrope == hasattr(model.model, "rope_deltas")  # the registry matches the model


def test_an_unsupported_family_is_named_with_what_is_supported():
    from transformers import PretrainedConfig

    from lmm_vqa.backbones import family_of

    config = PretrainedConfig(architectures=["InternVLChatModel"])
    config.model_type = "internvl_chat"
    with pytest.raises(ValueError, match=r"'internvl_chat' \(InternVLChatModel\) is not a family.*llava.*mplug_owl2"):
        family_of(config)


def test_a_checkpoint_of_an_unsupported_family_fails_before_loading(tmp_path, videos, capsys):
    import json

    from lmm_vqa.cli import main

    folder = tmp_path / "internvl"  # a remote-code-only architecture this project does not implement
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "internvl_chat", "architectures": ["InternVLChatModel"],
                                                    "auto_map": {"AutoModel": "modeling_internvl_chat.InternVLChatModel"}}))
    assert main(["score", str(videos["h264"]), "--model", str(folder), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "'internvl_chat'" in err and "not a family lmm-vqa supports" in err and "mplug_owl2" in err


def test_the_qwen2_vl_benchmark_builder_makes_a_checkpoint_that_scores(tmp_path, videos):
    """eval/bench_score.py --family qwen2_vl builds Qwen2-VL-7B's shapes with this; here at tiny widths: it loads
    through the real path, scores, and its processor is the real one's defaults (a 1280x720 frame is 26 x 46 merged
    patches of 28 px, 1196 visual tokens)."""
    import numpy as np

    from lmm_vqa.testing import QWEN2_VL_7B_SHAPES, build_qwen2_vl_checkpoint

    vision = {**QWEN2_VL_7B_SHAPES["vision"], "depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 4}
    text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                rope_parameters={"rope_type": "default", "mrope_section": [4, 2, 2], "rope_theta": 10000.0})
    scorer = load_scorer(build_qwen2_vl_checkpoint(tmp_path / "q", vision, text), device="cpu", max_frames=2)
    row = scorer.score_video(videos["h264"])
    assert row["status"] == "ok" and 1 <= row["score"] <= 5
    frame = np.zeros((720, 1280, 3), np.uint8)
    inputs = scorer.encode([scorer.prompt_for([frame])], [frame])
    assert inputs["image_grid_thw"].tolist() == [[1, 52, 92]]


def test_qwen3_5_benchmark_builder_loads_and_scores_as_q_realign(tmp_path, videos):
    """eval/bench_score.py --family qwen3_5_0.8b / qwen3_5_9b builds Q-ReAlign's shapes with this; here at tiny
    widths (the 0.8B's layer pattern and rotary split kept): it loads through the real path and scores with the
    q-realign-mini preset, and the processor is the published one's (16 px patches merged 2 x 2): a 1280x720 video
    frame, shrunk to 448 x 251 as the preset says (sides truncated), is 14 x 8 merged patches, 112 visual tokens."""
    import numpy as np

    from lmm_vqa.testing import QWEN3_5_0_8B_SHAPES, build_qwen3_5_checkpoint

    vision = {**QWEN3_5_0_8B_SHAPES["vision"], "depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
              "out_hidden_size": 64}
    text = {**QWEN3_5_0_8B_SHAPES["text"], "vocab_size": 2000, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 4, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
            "linear_key_head_dim": 16, "linear_value_head_dim": 16, "linear_num_key_heads": 2,
            "linear_num_value_heads": 2}
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_section": [2, 1, 1]}  # a quarter of 32, halved
    folder = build_qwen3_5_checkpoint(tmp_path / "q", vision, text)
    scorer = load_scorer(folder, device="cpu", preset="q-realign-mini")
    assert scorer.model.config.text_config.layer_types == ["linear_attention"] * 3 + ["full_attention"]
    row = scorer.score_video(videos["h264"])
    assert row["status"] == "ok" and 1 <= row["score"] <= 5
    video = tmp_path / "wide.mp4"
    write_video(video, np.zeros((4, 720, 1280, 3), np.uint8), fps=4)
    frames = scorer.load(str(video)).frames
    inputs = scorer.encode([scorer.prompt_for(list(frames))], list(frames))
    assert frames.shape[1:3] == (251, 448) and inputs["image_grid_thw"].tolist() == [[1, 16, 28]] * len(frames)
    assert (inputs["input_ids"] == scorer.model.config.image_token_id).sum() == 112 * len(frames)


def test_fp8_would_convert_the_language_models_large_linear_layers_only(tmp_path):
    """What --dtype fp8 hands to float8 kernels (a GPU test converts them): on the demo model, each of its 4 language
    layers' 7 projections; not the vision tower, the projector, the head (211 words: too narrow) or LoRA's own
    small matrices, whose base layer is converted instead."""
    from peft import LoraConfig, get_peft_model

    from lmm_vqa.compilation import language_modules
    from lmm_vqa.fp8 import _worth_quantising

    model = load_scorer(device="cpu").model
    chosen = [f"{i}.{n}" for i, lm in enumerate(language_modules(model)) for n, m in lm.named_modules()
              if _worth_quantising(m, n)]
    assert len(chosen) == 28 and all(n.split(".")[-1].endswith("proj") for n in chosen), chosen
    lora = get_peft_model(model, LoraConfig(r=16, target_modules=["q_proj"]))
    picked = [n for lm in language_modules(lora) for n, m in lm.named_modules() if _worth_quantising(m, n)]
    assert len(picked) == 28 and not any("lora_" in n for n in picked)
    assert sum(n.endswith("q_proj.base_layer") for n in picked) == 4


def test_a_fast_vlm_tower_trained_in_its_branched_form_folds_into_the_shipped_form(tmp_path, videos):
    """The demo model's path: a FastVLM base in FastViT's training form (batch norms, parallel branches) is
    exported in FastVLM's reparameterised form, which loads as the hub's checkpoints do and scores the same."""
    import json
    import subprocess
    import sys

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from lmm_vqa.backbones import fast_vlm
    from lmm_vqa.checkpoints import load_scorer
    from lmm_vqa.scoring import SCORER_FILE
    from lmm_vqa.testing import build_fast_vlm_checkpoint

    vision = fast_vlm.vision_config((8, 16, 32, 64, 128), inference_mode=False)
    base = build_fast_vlm_checkpoint(tmp_path / "base", vision, dict(hidden_size=32, intermediate_size=64), side=128)
    model = AutoModelForImageTextToText.from_pretrained(base)
    tower = model.model.vision_tower.timm_model
    assert any("bn" in n for n, _ in tower.named_modules()), "training form: batch norms"
    with torch.no_grad():  # running statistics that are not the identity, as after training
        for m in tower.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 2)
    model.save_pretrained(base)
    (base / SCORER_FILE).write_text(json.dumps({"mode": "frame", "frames": "fps:4", "max_frames": 2}))
    before = load_scorer(base).score_video(videos["h264"])

    out = tmp_path / "shipped"
    subprocess.run([sys.executable, "eval/export_demo_model.py", str(base), str(out)], check=True,
                   cwd=__import__("pathlib").Path(__file__).resolve().parents[1])
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "fast_vlm" and config["vision_config"]["model_args"]["inference_mode"] is True
    shipped = AutoModelForImageTextToText.from_pretrained(out)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in shipped.model.vision_tower.timm_model.stem.modules())
    AutoProcessor.from_pretrained(out)
    assert json.loads((out / SCORER_FILE).read_text())["crops"] == 3  # the demo model scores three squares
    after = load_scorer(out, crops=1).score_video(videos["h264"])
    assert after["score"] == pytest.approx(before["score"], abs=2e-3)  # fp16 export of the same function


def test_fp8_scaling_is_checked_before_the_model_loads():
    """A scaling for a dtype that is not fp8, or a scaling that does not exist, fails with what to do."""
    from lmm_vqa.fp8 import check_scaling

    with pytest.raises(ValueError, match="applies to dtype fp8 only"):
        load_scorer(device="cpu", dtype="fp32", fp8_scaling="tensor")
    with pytest.raises(ValueError, match="one of row, tensor"):
        check_scaling("block")
    assert check_scaling(None) == "row" and check_scaling("tensor") == "tensor"
