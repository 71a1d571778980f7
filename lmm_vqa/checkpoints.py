"""Checkpoints: where `--model` is, what it is, and loading it. The one home of model loading.

- Where: a local folder, `demo` (the bundled model), or a hub id that can be reached or is cached;
  checked before anything loads, so a typo or a machine without network gets one clear sentence at
  once instead of a download library's retries (minutes) and its traceback.
- What (`describe`, from the small files alone): a full checkpoint, a LoRA adapter folder from
  `lmm-vqa train` (base + adapter), or a HIVE folder (one base, two adapters, fusion weights).
- Loading (`load_scorer`): the network, its processor and scorer.json, as a Scorer or HiveScorer.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

DEMO = "demo"  # --model demo / model=demo: the small model bundled in the package


def looks_like_path(name: str) -> bool:
    """A hub id is `org/name` (or `name`); `./x`, `../x`, `/x`, `~/x`, `a/b/c` and `x\\y` are paths."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def locate(model: str | os.PathLike, what: str = "--model") -> str:
    """`model` as a folder path or a hub id that loading will find (`demo`: the bundled demo model); a
    ValueError that says why not."""
    name = os.fspath(model)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name == DEMO:
        return str(demo_model_path())
    if path.exists():
        raise ValueError(f"{what} {name}: a file, not a checkpoint folder")
    parts = name.split("/")
    if len(parts) > 2 and all(parts) and not name.startswith(("~", ".")) and "\\" not in name:  # org/name/subfolder
        return _hub_subfolder("/".join(parts[:2]), "/".join(parts[2:]), what)
    if looks_like_path(name):
        raise ValueError(f"{what} {name}: no such folder")
    return _reachable_hub_id(name, what)


def _hub_subfolder(repo: str, sub: str, what: str) -> str:
    """`org/name/sub`: the checkpoint in subfolder `sub` of hub model `org/name` (VQ-Insight's weights are one
    of several in ByteDance/Q-Insight), fetched (that folder only) or found in the cache, as a local folder."""
    from huggingface_hub import constants, snapshot_download

    try:
        _reachable_hub_id(repo, what, probe=f"{sub}/config.json")
    except ValueError as e:
        reason = str(e).split(": ", 1)[1].replace(
            f"(`hf download {repo}`) and copy the folder here, then pass that folder",
            f"(`hf download {repo} --include '{sub}/*'`) and copy it here, then pass its {sub} folder")
        raise ValueError(f"{what} {repo}/{sub}: no such folder here, and as model {repo}'s subfolder {sub}: "
                         f"{reason}") from None
    root = snapshot_download(repo, allow_patterns=[f"{sub}/*"], local_files_only=constants.HF_HUB_OFFLINE)
    folder = Path(root) / sub
    if not (folder / "config.json").is_file():
        raise ValueError(f"{what} {repo}/{sub}: model {repo} has no checkpoint in a subfolder {sub!r}")
    return str(folder)


def _reachable_hub_id(repo: str, what: str, probe: str = "config.json") -> str:
    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub.errors import RepositoryNotFoundError

    cached = isinstance(try_to_load_from_cache(repo, probe), str)
    if constants.HF_HUB_OFFLINE:
        if not cached:
            raise ValueError(f"{what} {repo}: not a local folder, and HF_HUB_OFFLINE is set with the model not in "
                             "the local Hugging Face cache")
        return repo
    try:
        HfApi().model_info(repo, timeout=10)
    except RepositoryNotFoundError:
        raise ValueError(f"{what} {repo}: no such local folder, and no such model on the Hugging Face hub "
                         "(or it is private: log in with `hf auth login`)") from None
    except Exception as e:  # no network, DNS, proxy, timeout: whatever stops one request
        hint = ("it is in the local cache: rerun with HF_HUB_OFFLINE=1 to load it from there" if cached else
                "download it where there is a network (`hf download " + repo + "`) and copy the folder here, "
                "then pass that folder")
        raise ValueError(f"{what} {repo}: not a local folder, and the Hugging Face hub cannot be reached "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no answer'}); {hint}") from None
    return repo


# ----------------------------------------------------------------------------- what a folder is

ADAPTER_FILE = "adapter_config.json"
HIVE_FILE = "hive.json"


@dataclass(frozen=True)
class Checkpoint:
    """What `--model` names, read from its small files without loading any weights.

    kind: "model" (a full checkpoint: folder or hub id), "adapter" (a LoRA folder from `lmm-vqa train`:
    its base model plus the adapter) or "hive" (a HIVE folder: one base, a coarse and a fine adapter).
    """

    kind: str
    path: str  # the folder, or the hub id
    base: str  # the full checkpoint the weights start from (= path for kind "model")
    adapters: dict = field(default_factory=dict)  # adapter name -> folder
    scorer_folders: dict = field(default_factory=dict)  # part -> folder holding its scorer.json ("" for none)
    fusion_weights: dict | None = None  # HIVE only
    preset: str = ""  # the preset (lmm_vqa/presets) its scoring settings start from, where one applies

    @property
    def identity(self) -> str:
        """Its name in a results file's record: a local folder's absolute path, else the hub id."""
        return str(Path(self.path).resolve()) if Path(self.path).exists() else self.path


def demo_model_path() -> Path:
    """The small demo model shipped inside the package (trained on synthetic distortions only)."""
    return Path(__file__).resolve().parent / "demo_model"


def demo_notice() -> str:
    """What the CLI says when the demo model stands in; what it was trained on comes from its model card."""
    card = (demo_model_path() / "README.md").read_text()
    fields = dict(line.split(":", 1) for line in card.splitlines() if line.startswith(("Trained on:", "Judges:")))
    judges = f" It judges {fields['Judges'].strip()}." if "Judges" in fields else ""
    return ("no --model given; using the bundled DEMO model, a small model trained only on synthetic "
            f"distortions ({fields['Trained on'].strip()}).{judges} Its scores are a demonstration, not a quality "
            "metric: pass --model for a real checkpoint.")


def base_of_adapter(path) -> str:
    """The base checkpoint an adapter folder was trained on (peft's `base_model_name_or_path`)."""
    config = json.loads((Path(path) / ADAPTER_FILE).read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{path}/{ADAPTER_FILE} names no base model")
    return base


def uses_dual_encoder(path) -> bool:
    """Whether an adapter folder was trained with HIVE's dual encoder (it saves the fusion module)."""
    from lmm_vqa.dual import FUSION

    config = json.loads((Path(path) / ADAPTER_FILE).read_text())
    return any(FUSION in name for name in config.get("modules_to_save") or [])


def check_family(base: str) -> None:
    """A local checkpoint whose config names a family lmm-vqa does not implement fails here, by name, with
    the supported ones listed; not deep inside transformers (remote code is never run)."""
    config_file = Path(base) / "config.json"
    if config_file.is_file():
        from types import SimpleNamespace

        from lmm_vqa.backbones import family_of

        config = json.loads(config_file.read_text())
        family_of(SimpleNamespace(model_type=config.get("model_type"), architectures=config.get("architectures")))


def describe(model: str | os.PathLike | None = None, preset: str | None = None) -> Checkpoint:
    """What `model` is (None: the bundled demo model); checks it exists or can be reached (`locate`),
    and, for a local base model, that its family is supported. `preset`: a preset's name; by default
    the one whose hub ids name the checkpoint (or an adapter's base), if any."""
    from lmm_vqa.presets import get_preset, preset_for

    ckpt = _describe(model)
    check_family(ckpt.base)
    if preset:
        return replace(ckpt, preset=get_preset(preset).name)
    found = preset_for(ckpt.base) if ckpt.kind != "hive" else None
    return replace(ckpt, preset=found.name) if found else ckpt


def _describe(model) -> Checkpoint:
    path = str(demo_model_path()) if model is None else locate(model)
    folder = Path(path)
    if (folder / HIVE_FILE).is_file():
        spec = json.loads((folder / HIVE_FILE).read_text())
        dirs = {part: str(folder / sub) for part, sub in spec["adapters"].items()}
        bases = {part: base_of_adapter(d) for part, d in dirs.items()}
        if len(set(bases.values())) != 1:
            raise ValueError(f"{folder}: the HIVE adapters were trained on different base models {bases}")
        return Checkpoint("hive", path, next(iter(bases.values())), dirs, dirs, spec["weights"])
    if (folder / ADAPTER_FILE).is_file():
        return Checkpoint("adapter", path, base_of_adapter(folder), {"default": path}, {"": path})
    return Checkpoint("model", path, path, {}, {"": path if folder.is_dir() else ""})


def scorer_configs(ckpt: Checkpoint, **overrides) -> dict:
    """part -> ScorerConfig (scorer.json, else the checkpoint's preset, under the non-None overrides); the
    part is "" for one scorer."""
    from lmm_vqa.presets import get_preset
    from lmm_vqa.scoring import ScorerConfig

    defaults = get_preset(ckpt.preset).scorer if ckpt.preset else None
    return {part: ScorerConfig.load(folder or None, defaults=defaults, **overrides)
            for part, folder in ckpt.scorer_folders.items()}


def _as_checkpoint(model, preset: str | None = None) -> Checkpoint:
    """`model` described, unless it already is a Checkpoint (a hub id is then not looked up again)."""
    return model if isinstance(model, Checkpoint) else describe(model, preset)


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def weights_stamp(ckpt: Checkpoint) -> str | None:
    """A short stamp of the weight files in a checkpoint's local folders (base and adapters): their names, sizes
    and modification times, hashed. It changes when a folder is trained or exported into again under the same
    name, which its path alone does not show; None for a hub id (not stamped: which revision it resolves to is
    known only when it loads)."""
    import hashlib

    folders = [Path(f) for f in (ckpt.base, *ckpt.adapters.values()) if Path(f).is_dir()]
    if not folders:
        return None
    stamp = hashlib.sha256()
    for folder in folders:
        for f in sorted(folder.iterdir()):
            if f.suffix in WEIGHT_SUFFIXES and f.is_file():
                st = f.stat()
                stamp.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns};".encode())
    return stamp.hexdigest()[:16]


def run_settings(model=None, **overrides) -> dict:
    """What the scores of a run depend on, known without loading the model: the checkpoint (and a stamp of
    its weight files) and its resolved scoring settings; for a HIVE folder, both parts' settings and the
    fusion weights. A results file records this, and a resumed run must match it. `model`: as for describe,
    or a Checkpoint."""
    ckpt = _as_checkpoint(model)
    configs = {part: asdict(c) for part, c in scorer_configs(ckpt, **overrides).items()}
    which = {"model": ckpt.identity, "weights": weights_stamp(ckpt)}
    if ckpt.kind == "hive":
        return {**which, "settings": configs, "fusion_weights": ckpt.fusion_weights}
    return {**which, "settings": configs[""], **({"preset": ckpt.preset} if ckpt.preset else {})}


def result_columns(model=None, **overrides) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(level words, extra columns) of a checkpoint's result rows, without loading the model."""
    from lmm_vqa.hive import HiveScorer
    from lmm_vqa.levels import LevelSet

    ckpt = _as_checkpoint(model)
    configs = scorer_configs(ckpt, **overrides)
    if ckpt.kind == "hive":
        return LevelSet.from_json(configs["coarse"].levels).words, HiveScorer.extra_columns
    if configs[""].method == "answer":
        from lmm_vqa.answers import AnswerScorer

        return (), AnswerScorer.extra_columns
    return LevelSet.from_json(configs[""].levels).words, ()


# ----------------------------------------------------------------------------- loading

def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str | None) -> str:
    """The device to load onto (None: cuda if available, else cpu), checked before anything loads."""
    import torch

    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a device: use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {device!r}: only cpu and cuda are supported")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA GPU is visible on this machine (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def torch_dtype(name: str | None, device: str):
    """bf16 on GPU and fp32 on CPU unless named; fp8 loads bf16 weights (fp8.py converts them after)."""
    import torch

    if name == "fp8":
        return torch.bfloat16
    if name in (None, "auto"):
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES) + ['fp8']} or auto, got {name!r}")
    return getattr(torch, _DTYPES[name])


def from_pretrained(base: str, **kwargs):
    """AutoModelForImageTextToText.from_pretrained with lmm-vqa's own families registered, and strict:
    weights that do not fit the architecture (keys missing or unexpected, e.g. a config that says
    mplug_owl2 over another model's weights) are an error naming them, not a randomly filled model.
    `.bin` weights load with weights_only=True; a pickle that would run code is refused."""
    from transformers import AutoModelForImageTextToText

    from lmm_vqa import models

    models.register()
    try:
        net, info = AutoModelForImageTextToText.from_pretrained(base, output_loading_info=True, **kwargs)
    except OSError as e:
        raise ValueError(f"cannot load model {base!r}: {e}") from None
    except Exception as e:  # torch.load(weights_only=True) refusing a pickle that is not plain tensors
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise ValueError(f"{base}: its .bin weights are a pickle holding more than tensors, which could run "
                             f"code when loaded; refused (convert them to safetensors from a trusted copy)") from None
        raise
    bad = {k: sorted(info.get(k) or ()) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if any(bad.values()):
        listed = "; ".join(f"{k.replace('_', ' ')} ({len(v)}): {', '.join(map(str, v[:6]))}{' ...' if len(v) > 6 else ''}"
                           for k, v in bad.items() if v)
        raise ValueError(f"{base}: the weights do not match the {type(net).__name__} its config.json describes: "
                         f"{listed}")
    return net


def load_model(ckpt: Checkpoint, device: str, dtype):
    """The checkpoint's network, eval mode, on `device`: the base model, then its adapter(s) (a HIVE
    folder's two on one base), with the dual encoder attached first where an adapter holds one."""
    from lmm_vqa.dual import attach_dual_encoder

    base = locate(ckpt.base, "the base model") if ckpt.kind != "model" else ckpt.base
    try:
        net = from_pretrained(base, dtype=dtype, attn_implementation="sdpa")
    except ValueError as e:
        where = f" (the base model of {ckpt.path})" if ckpt.kind != "model" else ""
        raise ValueError(f"{e}{where}") from None
    if ckpt.adapters:
        from peft import PeftModel

        if any(uses_dual_encoder(folder) for folder in ckpt.adapters.values()):
            attach_dual_encoder(net)  # before the adapter, which holds its weights
        names = list(ckpt.adapters)
        net = PeftModel.from_pretrained(net, ckpt.adapters[names[0]], adapter_name=names[0])
        for name in names[1:]:
            net.load_adapter(ckpt.adapters[name], adapter_name=name)
    return net.to(device).eval()


def load_scorer(model: str | os.PathLike | None = None, device: str | None = None, dtype: str | None = None,
                compile: str | bool | None = None, preset: str | None = None, fp8_scaling: str | None = None,
                **overrides):
    """A Scorer for `model` (folder, hub id or `demo`; None: the bundled demo model; or a Checkpoint): the
    network, its processor and its scorer.json under `overrides` (ScorerConfig fields). A HIVE folder gives
    a HiveScorer. `dtype`: bf16 | fp16 | fp32 | fp8 (the language model's linear layers in float8, fp8.py, scaled
    per `fp8_scaling`: row (default) | tensor).
    `compile`: auto (on on a GPU, off on the CPU) | on | off, torch.compile of the language model's layers. `preset`:
    score as a named preset (default: the checkpoint's own, found by its hub id; see `lmm-vqa models`)."""
    from transformers import AutoProcessor

    from lmm_vqa import compilation, fp8, models
    from lmm_vqa.hive import HiveScorer
    from lmm_vqa.scoring import Scorer

    ckpt = _as_checkpoint(model, preset)
    device = check_device(device)
    configs = scorer_configs(ckpt, **overrides)
    if ckpt.kind == "hive" and any(c.method != "levels" for c in configs.values()):
        raise ValueError(f"{ckpt.path}: HIVE fuses level-word scores; its adapters cannot use method: answer")
    if dtype == "fp8":
        fp8.check_supported(device)
        fp8.check_scaling(fp8_scaling)
    elif fp8_scaling:
        raise ValueError(f"fp8_scaling={fp8_scaling!r} applies to dtype fp8 only, not {dtype or 'the default'}")
    models.register()
    net = load_model(ckpt, device, torch_dtype(dtype, device))
    if dtype == "fp8":
        fp8.quantize_language_model(net, fp8_scaling)
    if compilation.resolve(compile, device):
        compilation.compile_language_model(net)
    processor = AutoProcessor.from_pretrained(next(iter(ckpt.scorer_folders.values())) or ckpt.path)
    if ckpt.kind == "hive":
        return HiveScorer(net, processor, configs, ckpt.fusion_weights, name=ckpt.path)
    if configs[""].method == "answer":
        from lmm_vqa.answers import AnswerScorer

        return AnswerScorer(net, processor, configs[""], name=ckpt.path)
    return Scorer(net, processor, configs[""], name=ckpt.path)
