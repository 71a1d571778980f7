"""checkpoints.py: what a --model is, read from its small files, and the one loading path."""

from pathlib import Path

import pytest

from lmm_vqa.checkpoints import demo_model_path, describe, load_scorer, run_settings
from lmm_vqa.hive import HiveScorer
from lmm_vqa.testing import build_hive_folder


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
