"""Tests that need a CUDA GPU (skipped elsewhere): QLoRA, whose 4-bit layers only train on a GPU.
Run on the device machine with `python -m pytest -q tests/test_gpu.py`; the result is recorded by
`eval/gpu_tests.py` in eval/results/gpu_tests.json."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from lmm_vqa.cli import main
from lmm_vqa.results import read_rows
from lmm_vqa.testing import moving_pattern

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture()
def image_labels(tmp_path):
    """24 images with a MOS each, as a generic label file (images decode without PyAV or decord)."""
    tmp_path = tmp_path / "images"
    tmp_path.mkdir()
    rng = np.random.default_rng(0)
    rows = ["path,mos"]
    for i in range(24):
        Image.fromarray(moving_pattern(1, 48, 64, seed=i)[0]).save(tmp_path / f"im{i:02d}.png")
        rows.append(f"im{i:02d}.png,{rng.uniform(0, 100):.1f}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "labels.csv"


# linear layers per language-model layer: q, k, v, o, gate, up, down; mPLUG-Owl2 has two k and two v (multiway)
LINEAR_PER_LAYER = {"llava": 7, "mplug_owl2": 9}


@pytest.mark.parametrize("family", sorted(LINEAR_PER_LAYER))
def test_qlora_trains_through_4bit_layers_and_its_folder_scores(tmp_path, checkpoint, image_labels, family):
    pytest.importorskip("bitsandbytes")
    from lmm_vqa.backbones import BACKBONES

    out = tmp_path / "qlora"
    assert main(["train", "synthetic_vdpve", f"model={checkpoint(family)}", f"train_labels={image_labels}",
                 "val_labels=null", f"output_dir={out}", "quantization=4", "dtype=bf16", "batch_size=8",
                 "max_steps=12", "lr=5e-3", "warmup_ratio=0", "log_every=1", "num_workers=0", "frames=uniform:1",
                 "max_frames=1", "mos_range=[0, 100]", "gradient_checkpointing=true"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["quantized_layers"] == 2 * LINEAR_PER_LAYER[family]  # every linear layer of the 2-layer LM is 4-bit
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if "loss" in line]
    loss = [r["level"] for r in log]
    assert np.mean(loss[-3:]) < 0.8 * np.mean(loss[:3]), loss  # it learns the labels through 4-bit weights
    weights = load_file(out / "adapter_model.safetensors")
    language = f".{BACKBONES[family].language}."
    assert any("lora_B" in k and language in k and w.abs().max() > 0 for k, w in weights.items())

    from lmm_vqa.checkpoints import load_scorer

    # the adapter was trained on a 4-bit base; the folder scores on the unquantised base like any adapter
    scorer = load_scorer(out, device="cuda")
    assert scorer.model.dtype == torch.bfloat16
    assert main(["score", str(image_labels.parent), "--model", str(out), "--out", str(tmp_path / "s.csv"),
                 "--quiet"]) == 0
    rows = read_rows(tmp_path / "s.csv")
    assert len(rows) == 24 and all(r["status"] == "ok" for r in rows)


@pytest.mark.parametrize("scaling", ["row", "tensor"])
def test_fp8_scores_close_to_bf16_with_the_language_models_linear_layers_in_float8(scaling):
    """The bundled demo model (trained weights): --dtype fp8 converts the language model's 4 x 7 linear layers
    and nothing else, and its scores stay near bf16's (the benchmark measures by how much), at either scaling."""
    pytest.importorskip("torchao")
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("float8 needs compute capability 8.9")
    from lmm_vqa.checkpoints import load_scorer

    frames = moving_pattern(6, 128, 224, seed=3)
    bf16 = load_scorer(device="cuda", dtype="bf16")
    fp8 = load_scorer(device="cuda", dtype="fp8", fp8_scaling=scaling)
    converted = [n for n, m in fp8.model.named_modules() if "Float8" in type(getattr(m, "weight", None)).__name__]
    assert len(converted) == 28 and all(".language_model." in n for n in converted), converted
    a, b = (np.array([s.score_frames(frames[i:i + 1])["score"] for i in range(len(frames))]) for s in (bf16, fp8))
    assert np.abs(a - b).max() < 0.1, (a, b)
    assert not np.array_equal(a, b)  # it did compute in float8
