"""The documentation agrees with the code and the measured results."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_tables_are_rendered_from_their_result_files():
    result = subprocess.run([sys.executable, str(ROOT / "eval/render_benchmarks.py"), "--check"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


def test_a_rendered_block_follows_its_results(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "eval"))
    try:
        import render_benchmarks as rb
    finally:
        sys.path.pop(0)
    block = "<!-- rendered: train_cost -->\ntyped by hand: 99 samples/s\n<!-- /rendered -->\n"
    text = rb.render(block)
    assert "typed by hand" not in text and "9.35" in text  # the figure of eval/results/train_cost.json


def test_the_demo_model_is_described_alike_everywhere():
    from lmm_vqa.checkpoints import demo_notice

    card = (ROOT / "lmm_vqa/demo_model/README.md").read_text()
    trained_on = re.search(r"^Trained on: (.+)$", card, re.M).group(1)
    assert trained_on in demo_notice()
    assert trained_on in " ".join((ROOT / "README.md").read_text().split())


def test_every_shipped_prompt_and_config_named_in_the_readme_exists():
    readme = (ROOT / "README.md").read_text()
    for name in re.findall(r"lmm-vqa train ([a-z_]+)(?=\s)", readme):
        assert (ROOT / "train/configs" / f"{name}.yaml").is_file(), name
