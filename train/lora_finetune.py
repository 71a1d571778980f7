"""LoRA / QLoRA fine-tuning of an LMM to answer with quality levels.

    lmm-vqa train train/configs/synthetic_vdpve.yaml [key=value ...] [--resume [CHECKPOINT]]
    accelerate launch train/lora_finetune.py CONFIG [key=value ...]      # the same on N GPUs

Setup, loop, validation, save, top to bottom. The maths is in the package (levels: MOS -> level
targets; losses; scoring: the level-word log-probabilities that scoring uses too), so training
and scoring cannot drift apart. The output folder is a scorer: `lmm-vqa score --model OUTPUT_DIR`.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmm_vqa import levels as lv
from lmm_vqa import losses, metrics
from lmm_vqa.adapters import count_parameters, make_trainable, module_roles, quantization_config
from lmm_vqa.backbones import family_of
from lmm_vqa.checkpoints import describe, load_model, torch_dtype
from lmm_vqa.configs import load_config, save_config
from lmm_vqa.dual import FUSION, LocalGlobalFusion, attach_dual_encoder, inner_model
from lmm_vqa.scoring import (SCORER_FILE, Scorer, ScorerConfig, chw_tensors, inputs_to, level_word_logprobs,
                             images_per_prompt, processor_inputs, prompt_placeholders, render_prompt,
                             resolve_level_tokens, view_geometry)
from lmm_vqa.video import Sampling, load_frames
from lmm_vqa.views import centre_crops_square


@dataclass
class TrainConfig:
    # --- data
    train_labels: str | list = ""  # label file (VDPVE labels.txt, CVQAD Subjective_scores.csv, Q-Align JSON, CSV),
    #                                or a list of them in one layout: a mixture
    val_labels: str | list | None = None  # validated each epoch; the best epoch is kept. None: the last epoch is kept
    layout: str = "auto"  # auto | vdpve | cvqad | qalign | generic
    video_dir: str | None = None  # where the videos are; None: beside each label file
    output_dir: str = "runs/lora"  # becomes a scorer folder: lmm-vqa score --model OUTPUT_DIR
    # --- model
    model: str = ""  # base checkpoint: folder or hub id
    dtype: str = "auto"  # weights: auto (bf16 on GPU, fp32 on CPU) | bf16 | fp16 | fp32
    mixed_precision: str = "no"  # autocast on top of the weights' dtype: no | bf16 | fp16
    quantization: int = 0  # 0, or 4 / 8: QLoRA with bitsandbytes (GPU only)
    gradient_checkpointing: bool = False
    # --- what trains
    language: str = "lora"  # lora | full | frozen
    vision: str = "frozen"  # frozen | lora | full
    projector: bool = True  # train the vision-language projector fully
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str | list = "all-linear"  # "all-linear" or names like [q_proj, v_proj]
    # --- prompt, levels, frames, views: saved as the output's scorer.json. The defaults are scoring's own
    # (ScorerConfig's), so a model is trained on what it will be scored with.
    mode: str = ScorerConfig.mode  # frame: one keyframe per prompt | clip: all keyframes in one prompt
    frames: str = ScorerConfig.frames  # keyframe sampling, as for scoring
    max_frames: int = ScorerConfig.max_frames
    frames_per_sample: str = "random"  # frame mode: "random" keyframe per step | "all" (each keyframe, scores pooled)
    hflip: float = 0.0  # mirror a sample's frames left to right with this probability: more content from the same
    #                     videos, and quality does not change with it (as with VQA datasets' own labels)
    random_crop: bool = False  # for processors that resize the short side and centre-crop a square (CLIP's): cut
    #                            each sample's frames to a square of the short side at a random place first, so the
    #                            crop moves over the frame; the scale, and so what the artefacts look like, is the
    #                            one scoring sees (scoring keeps the centre)
    prompt: str | None = ScorerConfig.prompt  # prompts/ name or file; None: score_frame / score_clip
    levels: dict = field(default_factory=lv.DEFAULT_LEVELS.to_json)  # {word: value}, worst to best (as ScorerConfig)
    views: str = ScorerConfig.views  # frame | global | local | dual (HIVE: global + native-resolution local views)
    local_views: str = ScorerConfig.local_views  # grid:N crops | fragments:G
    encoder: str = ScorerConfig.encoder  # shared: the LM attends over every view's tokens | dual: HIVE's (dual.py)
    # --- targets
    labels: str = "gaussian"  # hard (Q-Align) | gaussian (DeQA-Score; two_nearest where no std) | two_nearest
    mos_range: list | None = None  # [low, high] of the MOS scale; None: the training set's min and max
    std_scale: float = 1.0  # multiplies the label std before it is mapped to the level scale
    group_normalise: bool = False  # CVQAD: min-max normalise scores inside each (sequence, preset) group
    group_batches: bool = False  # draw each batch from one group (rank pairs stay inside groups)
    # --- losses
    level_weight: float = 1.0  # cross-entropy / KL on the level-word distribution
    plcc_weight: float = 0.0  # (1 - PLCC) / 2 of the expected score over the batch
    rank_weight: float = 0.0  # pairwise logistic rank loss on the expected score (within groups)
    # --- optimisation
    epochs: int = 3
    max_steps: int = 0  # optimizer steps; 0: run all epochs
    batch_size: int = 8  # videos per step and process
    grad_accum: int = 1
    lr: float = 2e-4
    fusion_lr_scale: float = 1.0  # the dual encoder's fusion module learns at lr x this (its output projection
    #                               starts at zero, so it gets a gradient from the first step; at 10x, its share
    #                               of the global tokens jumped from 0 to 0.4 in two steps of a tiny model)
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    max_grad_norm: float = 1.0
    seed: int = 0
    num_workers: int = 4  # decoding + preprocessing processes
    preprocess: str = "auto"  # where the images are resized and normalised: auto (on the GPU when training on one,
    #                           as scoring does: the workers hand over uint8 frames) | workers (in the loader's
    #                           processes, on the CPU: the only choice there)
    log_every: int = 10  # steps
    save_every: int = 0  # steps between resumable checkpoints; 0: only at the end of each epoch
    keep_checkpoints: int = 2
    eval_batch_size: int = 16
    val_every: int = 1  # epochs between validations; the last epoch is always validated
    val_limit: int = 0  # validate on at most this many videos, one fixed random sample of the validation set
    #                     drawn once (0: all); for a large validation set and short epochs
    frame_cache: str | None = None  # a folder for the training videos' decoded keyframes: filled once before the
    #                                 first epoch, read afterwards, so no epoch decodes a video again (disk: frames x
    #                                 width x height x 3 bytes per video; reused while the files are unchanged)
    time_steps: bool = False  # log where the time goes (data, forward, backward, optimizer: ms per batch); it
    #                           waits for the GPU between the parts, so the run itself gets a little slower
    merge: bool = False  # also write OUTPUT_DIR/merged: the adapter merged into the base weights
    overwrite: bool = False  # start afresh in an output_dir that holds an earlier run's checkpoints

    def __post_init__(self):
        choices = {"layout": ("auto", "vdpve", "cvqad", "qalign", "generic"), "mixed_precision": ("no", "bf16", "fp16"),
                   "language": ("lora", "full", "frozen"), "vision": ("frozen", "lora", "full"),
                   "mode": ("frame", "clip"), "frames_per_sample": ("random", "all"),
                   "labels": ("hard", "gaussian", "two_nearest"), "quantization": (0, 4, 8),
                   "preprocess": ("auto", "workers")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if not self.train_labels or not self.model:
            raise ValueError("train_labels and model must be set (in the config or as key=value)")
        if not 0 <= self.hflip <= 1:
            raise ValueError(f"hflip is a probability (0 to 1), got {self.hflip}")
        if self.val_every < 1:
            raise ValueError(f"val_every must be at least 1 (epochs), got {self.val_every}")
        if self.mos_range is not None and len(self.mos_range) != 2:
            raise ValueError(f"mos_range must be [low, high], got {self.mos_range}")
        lv.LevelSet.from_json(self.levels)
        Sampling.parse(self.frames, self.max_frames)
        self.scorer_config()  # validates views, local_views and encoder together
        if self.encoder == "dual" and self.merge:
            raise ValueError("merge: the dual encoder's local encoder and fusion live in the adapter, and a merged "
                             "checkpoint could not load them: keep the adapter folder (merge: false)")

    def scorer_config(self) -> ScorerConfig:
        return ScorerConfig(mode=self.mode, frames=self.frames, max_frames=self.max_frames, prompt=self.prompt,
                            levels=self.levels, views=self.views, local_views=self.local_views,
                            encoder=self.encoder)


# ----------------------------------------------------------------------------- data

def level_targets(cfg: TrainConfig, mos: np.ndarray, std: np.ndarray, levels: lv.LevelSet, mos_range) -> np.ndarray:
    """(N, L) target distributions over the levels."""
    if cfg.labels == "hard":
        return lv.hard_labels(mos, mos_range, levels)
    score = lv.mos_to_scale(mos, mos_range, levels)
    if cfg.labels == "two_nearest":
        return lv.two_nearest_labels(score, levels)
    scale = (levels.high - levels.low) / (mos_range[1] - mos_range[0])
    return lv.gaussian_labels(score, std * cfg.std_scale * scale, levels)


def normalise_in_groups(mos: np.ndarray, std: np.ndarray, groups: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Min-max inside each group: scores that only compare within a group, on a common 0-1 scale.
    The std is in the MOS's units, so it is divided by the same group range."""
    out, out_std = np.empty_like(mos), np.asarray(std, np.float64).copy()
    for g in set(groups):
        idx = np.asarray([i for i, x in enumerate(groups) if x == g])
        lo, hi = mos[idx].min(), mos[idx].max()
        out[idx] = 0.5 if hi == lo else (mos[idx] - lo) / (hi - lo)
        out_std[idx] = np.nan if hi == lo else out_std[idx] / (hi - lo)
    return out, out_std


def check_random_crop(image_processor, cfg: TrainConfig) -> None:
    """random_crop moves the window scoring keeps: only where that window is a centred square of the short side's
    scale, i.e. the processor resizes the short side and centre-crops, and each frame is one image (views: frame)."""
    if not (centre_crops_square(image_processor) and cfg.views == "frame"):
        raise ValueError(f"random_crop: {type(image_processor).__name__} does not resize the short side and "
                         f"centre-crop (or views is not 'frame': {cfg.views!r}), so a random square would show the "
                         "model a view scoring never gives it; leave random_crop off")


class VideoSamples(torch.utils.data.Dataset):
    """Item i -> (keyframes of video i, i). Which keyframe a step sees, whether it is mirrored (`hflip`: the
    probability) and where its square is cut (`random_crop`) depend only on (seed, epoch, i), so a resumed run sees
    exactly what an uninterrupted one would. With a `cache` folder the keyframes are decoded once and read back from
    there afterwards."""

    def __init__(self, paths: list[str], sampling: Sampling, pick: str, seed: int, cache: str | None = None,
                 hflip: float = 0.0, random_crop: bool = False):
        self.paths, self.sampling, self.pick, self.seed, self.epoch = paths, sampling, pick, seed, 0
        self.hflip, self.random_crop = hflip, random_crop
        self.cache = Path(cache) if cache else None
        if self.cache:
            self.cache.mkdir(parents=True, exist_ok=True)

    def __len__(self):
        return len(self.paths)

    def cache_file(self, i) -> Path:
        """Named by what decides the frames: the file (path, size, modification time) and the sampling."""
        import hashlib

        stat = os.stat(self.paths[i])
        key = f"{os.path.abspath(self.paths[i])}|{stat.st_size}|{stat.st_mtime_ns}|{self.sampling}|" \
              f"{self.sampling.max_frames}"
        return self.cache / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"

    def keyframes(self, i) -> np.ndarray:
        if self.cache is None:
            return load_frames(self.paths[i], self.sampling).frames  # raises VideoError naming the file
        file = self.cache_file(i)
        if file.exists():
            return np.load(file)
        frames = load_frames(self.paths[i], self.sampling).frames
        part = file.with_suffix(f".{os.getpid()}.part")  # written whole, then renamed: a reader never sees half
        with open(part, "wb") as f:
            np.save(f, frames)
        os.replace(part, file)
        return frames

    def __getitem__(self, i):
        frames = self.keyframes(i)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.pick == "random":
            frames = frames[rng.integers(len(frames))][None]
        if self.hflip and rng.uniform() < self.hflip:
            frames = np.ascontiguousarray(frames[:, :, ::-1])  # (T, H, W, 3): W reversed
        if self.random_crop:
            _, h, w, _ = frames.shape
            side = min(h, w)
            y, x = rng.integers(h - side + 1), rng.integers(w - side + 1)
            frames = np.ascontiguousarray(frames[:, y:y + side, x:x + side])
        return frames, i


class Collate:
    """Runs in the loader's worker processes: prompts + images -> model inputs. With `raw`, the images stay uint8
    and the processor runs later, in `Collate.finish` on the training device (as scoring does on a GPU): the
    workers then hand over a quarter of the bytes of float32 pixels at the frames' own size, not the encoder's."""

    def __init__(self, processor, scorer_cfg: ScorerConfig, raw: bool = False):
        self.processor, self.cfg, self.raw = processor, scorer_cfg, raw
        self.size_px, self.fill = view_geometry(processor, scorer_cfg)

    def __call__(self, items):
        texts, images, owner, index = [], [], [], []
        for b, (frames, i) in enumerate(items):
            for imgs in images_per_prompt(frames, self.cfg, self.size_px, self.fill):
                texts.append(render_prompt(self.processor, prompt_placeholders(self.cfg, len(imgs)), self.cfg))
                images += imgs
                owner.append(b)
            index.append(i)
        if self.raw:
            inputs = (texts, [torch.from_numpy(np.ascontiguousarray(im)) for im in images])
        else:
            inputs = processor_inputs(self.processor, self.cfg, texts, images)
        return inputs, torch.tensor(owner), torch.tensor(index)

    def finish(self, inputs, device, dtype) -> dict:
        """A batch from the loader -> model inputs on `device`."""
        if self.raw:
            texts, images = inputs
            inputs = processor_inputs(self.processor, self.cfg, texts, chw_tensors(images, device), device=device)
        return inputs_to(inputs, device, dtype)


def _discard(item) -> None:
    return None


def fill_frame_cache(dataset: VideoSamples, num_workers: int, rank: int, world: int, disable: bool) -> None:
    """Decode every training video not yet in the frame cache, in the loader's worker processes (each process
    of a multi-GPU run takes its share)."""
    from tqdm.auto import tqdm

    todo = [i for i in range(rank, len(dataset), world) if not dataset.cache_file(i).exists()]
    if not todo:
        return
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, todo), batch_size=None,
                                         num_workers=min(num_workers, os.cpu_count() or 1),
                                         collate_fn=_discard)  # the worker writes the file; nothing comes back
    for _ in tqdm(loader, total=len(todo), desc="caching keyframes", unit="video", disable=disable):
        pass


def epoch_batches(cfg: TrainConfig, groups: list[str], epoch: int, rank: int, world: int) -> list[list[int]]:
    """This process's batches of an epoch: a permutation fixed by (seed, epoch), or with
    `group_batches` whole groups shuffled and cut into batches. Every process gets as many."""
    rng = np.random.default_rng([cfg.seed, epoch, 7])
    if cfg.group_batches:
        by_group: dict[str, list[int]] = {}
        for i, g in enumerate(groups):
            by_group.setdefault(g, []).append(i)
        batches = []
        for g in rng.permutation(sorted(by_group)):
            idx = rng.permutation(by_group[g]).tolist()
            batches += [idx[k:k + cfg.batch_size] for k in range(0, len(idx), cfg.batch_size)]
        batches = [batches[k] for k in rng.permutation(len(batches))]
    else:
        order = rng.permutation(len(groups)).tolist()
        batches = [order[k:k + cfg.batch_size] for k in range(0, len(order), cfg.batch_size)]
    per_rank = len(batches) // world
    if per_rank == 0:
        raise ValueError(f"{len(groups)} training videos make {len(batches)} batches, fewer than {world} processes")
    return batches[rank * per_rank:(rank + 1) * per_rank]


def video_scores(row_logp: torch.Tensor, member: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Each video's expected score, by scoring's own maths: the level distribution of each prompt
    renormalised, averaged over the video's prompts (`levels.pool_frames`), dotted with the values.
    row_logp: (R, L) word log-probs; member: (B, R). Returns (B,)."""
    return lv.probs_to_score(lv.pool_frames(row_logp.softmax(-1), member), values)


# ----------------------------------------------------------------------------- checkpoints

class StepTimer:
    """Where a training step's time goes: `mark(part)` charges the time since the previous mark to `part`, after
    waiting for the GPU's queued work (so each part is charged its own kernels); `report()` gives ms per batch for
    each part since the last report."""

    def __init__(self, device):
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.totals, self.steps, self.last = {}, 0, time.perf_counter()

    def mark(self, part: str) -> None:
        self.sync()
        now = time.perf_counter()
        self.totals[part] = self.totals.get(part, 0.0) + now - self.last
        self.steps += part == "data"
        self.last = now

    def report(self) -> dict:
        out = {f"ms_{k}": round(1000 * v / max(1, self.steps), 2) for k, v in self.totals.items()}
        self.totals, self.steps = {}, 0
        self.last = time.perf_counter()  # logging is not charged to the next step's data
        return out


def trainable_state(model) -> dict:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(folder: Path, model, optimizer, scheduler, progress: dict, accelerator) -> None:
    from safetensors.torch import save_file

    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        save_file(trainable_state(model), folder / "trainable.safetensors")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "progress": progress},
                   folder / "state.pt")
    accelerator.wait_for_everyone()
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    rng = {"python": random.getstate(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
           "torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    torch.save(rng, folder / f"rng_{accelerator.process_index}.pt")  # tensors and plain values only


def load_plain(path: Path) -> dict:
    """torch.load with weights_only=True: tensors and plain values, never code. A file holding anything
    else (a pickled object, as older versions wrote, or a planted one) is refused."""
    import pickle

    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} holds more than tensors and plain values, and unpickling it could run code: "
                         f"refused. Resume only from checkpoints this version wrote ({str(e).splitlines()[0]})") from None


def load_checkpoint(folder: Path, model, optimizer, scheduler, accelerator) -> dict:
    from safetensors.torch import load_file

    weights = load_file(folder / "trainable.safetensors")
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in weights]
    if missing or set(weights) - set(params):
        raise ValueError(f"{folder} does not match this model/config: missing {missing[:5]}, "
                         f"unexpected {sorted(set(weights) - set(params))[:5]}")
    with torch.no_grad():
        for n, w in weights.items():
            params[n].copy_(w)
    state = load_plain(folder / "state.pt")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = load_plain(folder / f"rng_{accelerator.process_index}.pt")
    name, keys, pos, has_gauss, gauss = rng["numpy"]
    random.setstate(rng["python"]), torch.set_rng_state(rng["torch"])
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if rng["cuda"]:
        torch.cuda.set_rng_state_all(rng["cuda"])
    return state["progress"]


def latest_checkpoint(output_dir: Path) -> Path:
    found = sorted((output_dir / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
    if not found:
        raise ValueError(f"--resume: no checkpoints under {output_dir / 'checkpoints'}")
    return found[-1]


def save_scorer(folder: Path, model, processor, cfg: TrainConfig, extra: dict) -> None:
    """The trained model as a scorer folder: adapter (or full weights), processor, scorer.json."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    cfg.scorer_config().save(folder)
    (folder / "train_result.json").write_text(json.dumps(extra, indent=2) + "\n")


# ----------------------------------------------------------------------------- validation

def validate(scorer: Scorer, val, metric: str, cfg: TrainConfig) -> dict:
    """Score the validation videos with the scoring code itself; failures are counted, not hidden."""
    rows = list(scorer.score_paths(val["path"], batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers))
    ok = np.array([r["status"] == "ok" for r in rows])
    if not ok.all():
        bad = [r["path"] for r in rows if r["status"] != "ok"]
        print(f"warning: {len(bad)} validation videos failed and are left out: {bad[:5]}", file=sys.stderr)
    pred = np.array([r.get("score", np.nan) for r in rows], np.float64)[ok]
    mos = np.asarray(val["mos"], np.float64)[ok]
    groups = [g for g, k in zip(val["group"], ok) if k]
    out = {"n": int(ok.sum()), "failed": int((~ok).sum()), "srcc": metrics.srcc(pred, mos),
           "plcc": metrics.plcc_poly3(pred, mos), "distinct_scores": int(len(np.unique(np.round(pred, 4))))}
    if metric == "aim2024":
        out.update(metrics.aim2024_score(pred, mos, groups))
    out["challenge"] = out["final"] if metric == "aim2024" else metrics.ntire2023_score(pred, mos)["main"]
    out["metric"] = metrics.selection_score(pred, mos, groups if metric == "aim2024" else None)
    return out


# ----------------------------------------------------------------------------- main

def parse_args(argv=None):
    from lmm_vqa.cli import train_parser  # defined there, so that `lmm-vqa train --help` needs no torch

    return train_parser().parse_args(argv)


def resolve_config_path(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    shipped = Path(__file__).resolve().parent / "configs" / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in (Path(__file__).resolve().parent / "configs").glob("*.yaml"))
    raise ValueError(f"no config {name!r}: not a file, and not one of the shipped configs {known}")


def main(argv=None) -> dict:
    from accelerate import Accelerator
    from tqdm.auto import tqdm
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, get_cosine_schedule_with_warmup

    from lmm_vqa.data import detect_layout, load_label_files

    args = parse_args(argv)
    # transformers' own deprecation notices about calls made inside peft/accelerate: nothing a user can act on
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    cfg = load_config(TrainConfig, resolve_config_path(args.config), args.overrides)
    accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum, mixed_precision=cfg.mixed_precision)
    device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
    if cfg.quantization and device.type != "cuda":
        raise ValueError(f"quantization={cfg.quantization} (QLoRA, bitsandbytes) needs a CUDA GPU; this run is on {device}")
    random.seed(cfg.seed), np.random.seed(cfg.seed), torch.manual_seed(cfg.seed)
    out = Path(cfg.output_dir)
    earlier = sorted((out / "checkpoints").glob("step_*"))
    if earlier and not args.resume and not cfg.overwrite:
        raise ValueError(f"{out} holds checkpoints of an earlier run ({earlier[-1].name}, ...): continue it with "
                         "--resume, or start afresh with overwrite=true or another output_dir")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if not args.resume:  # a fresh run: the earlier run's log and checkpoints go
            import shutil

            shutil.rmtree(out / "checkpoints", ignore_errors=True)
            (out / "log.jsonl").unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")

    # --- data: labels -> level targets
    levels = lv.LevelSet.from_json(cfg.levels)
    first = cfg.train_labels if isinstance(cfg.train_labels, str) else cfg.train_labels[0]
    layout = detect_layout(Path(first)) if cfg.layout == "auto" else cfg.layout
    train = load_label_files(cfg.train_labels, layout, cfg.video_dir, check_files=True)
    val = load_label_files(cfg.val_labels, layout, cfg.video_dir, check_files=True) if cfg.val_labels else None
    metric = "aim2024" if layout == "cvqad" else "ntire2023"
    mos, std = np.asarray(train["mos"], np.float64), np.asarray(train["std"], np.float64)
    if cfg.group_normalise:
        mos, std = normalise_in_groups(mos, std, train["group"])
    mos_range = tuple(cfg.mos_range) if cfg.mos_range else (float(mos.min()), float(mos.max()))
    targets = torch.tensor(level_targets(cfg, mos, std, levels, mos_range), dtype=torch.float32)
    score_target = torch.tensor(lv.mos_to_scale(mos, mos_range, levels), dtype=torch.float32)
    group_names = sorted(set(train["group"]))
    group_ids = torch.tensor([group_names.index(g) for g in train["group"]]) if cfg.rank_weight and \
        any(train["group"]) else None

    # --- model
    from lmm_vqa import models
    from lmm_vqa.checkpoints import from_pretrained, locate

    models.register()
    base = locate(cfg.model, "model=")
    base = str(Path(base).resolve()) if Path(base).is_dir() else base  # adapters name their base by it
    processor = AutoProcessor.from_pretrained(base)
    processor.tokenizer.padding_side = "left"  # the answer position is last in every row, as in scoring
    if cfg.random_crop:
        check_random_crop(processor.image_processor, cfg)
    dtype = torch_dtype(cfg.dtype, device.type)
    load_kwargs = {"dtype": dtype, "attn_implementation": "sdpa"}
    if cfg.quantization:
        with torch.device("meta"):  # an empty model, only to name the modules
            probe = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(base))
        load_kwargs.update(quantization_config=quantization_config(cfg.quantization, module_roles(probe), dtype),
                           device_map={"": device.index or 0})
        del probe
    model = from_pretrained(base, **load_kwargs)
    if cfg.quantization:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    if cfg.encoder == "dual":
        attach_dual_encoder(model)
    model = make_trainable(model, language=cfg.language, vision=cfg.vision, projector=cfg.projector,
                           lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                           lora_targets=cfg.lora_targets)
    if not cfg.quantization:
        model.to(device)
    n_train, n_total = count_parameters(model)
    scorer_cfg = cfg.scorer_config()
    level_ids = resolve_level_tokens(processor.tokenizer, scorer_cfg.answer_prefix, levels.words)  # as scoring
    mrope = family_of(inner_model(model).config).mrope
    values = torch.tensor(levels.values, device=device)

    params = [p for p in model.parameters() if p.requires_grad]
    # the dual encoder's fusion starts from scratch (its output projection at zero): its own step size
    fresh = {id(p) for n, p in model.named_parameters() if p.requires_grad and FUSION in n}
    groups = [{"params": [p for p in params if id(p) not in fresh], "lr": cfg.lr},
              {"params": [p for p in params if id(p) in fresh], "lr": cfg.lr * cfg.fusion_lr_scale}]
    # fused: one kernel for all parameters' update on a GPU instead of several per parameter (same arithmetic)
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=cfg.weight_decay,
                                  fused=device.type == "cuda")
    steps_per_epoch = len(epoch_batches(cfg, train["group"], 0, rank, world)) // cfg.grad_accum
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train)} videos at batch_size {cfg.batch_size} x grad_accum {cfg.grad_accum} x "
                         f"{world} process(es) make no whole optimizer step")
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
    scheduler = get_cosine_schedule_with_warmup(optimizer, math.ceil(cfg.warmup_ratio * total_steps), total_steps)
    model = accelerator.prepare(model)
    unwrapped = accelerator.unwrap_model(model)

    progress = {"step": 0, "epoch": 0, "batch": 0, "best": -math.inf, "best_step": 0, "history": []}
    if args.resume:
        ckpt = latest_checkpoint(out) if args.resume == "latest" else Path(args.resume)
        progress = load_checkpoint(ckpt, unwrapped, optimizer, scheduler, accelerator)
        if accelerator.is_main_process:
            print(f"resumed from {ckpt} at step {progress['step']}")
    if accelerator.is_main_process:
        print(f"training {n_train:,} of {n_total:,} parameters ({100 * n_train / n_total:.2f}%); "
              f"{len(train)} videos, {steps_per_epoch} steps/epoch, {total_steps} steps, {world} process(es)")

    dataset = VideoSamples(list(train["path"]), Sampling.parse(cfg.frames, cfg.max_frames),
                           "random" if cfg.mode == "frame" and cfg.frames_per_sample == "random" else "all", cfg.seed,
                           cfg.frame_cache, hflip=cfg.hflip, random_crop=cfg.random_crop)
    if cfg.frame_cache:
        fill_frame_cache(dataset, cfg.num_workers, rank, world, disable=not accelerator.is_main_process)
        accelerator.wait_for_everyone()
    if val is not None and 0 < cfg.val_limit < len(val):
        if accelerator.is_main_process:
            print(f"validating on {cfg.val_limit} of the {len(val)} validation videos, drawn once (val_limit)")
        keep = np.sort(np.random.default_rng([cfg.seed, 11]).choice(len(val), cfg.val_limit, replace=False))
        val = val.select(keep.tolist())
    log_file = out / "log.jsonl"
    bar = tqdm(total=total_steps, initial=progress["step"], desc="train", disable=not accelerator.is_main_process)
    running, started = [], time.perf_counter()
    timer = StepTimer(device) if cfg.time_steps else None
    collate = Collate(processor, scorer_cfg, raw=cfg.preprocess == "auto" and device.type == "cuda")

    def checkpoint():
        folder = out / "checkpoints" / f"step_{progress['step']}"
        save_checkpoint(folder, unwrapped, optimizer, scheduler, progress, accelerator)
        if accelerator.is_main_process:
            old = sorted((out / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
            for stale in old[:-cfg.keep_checkpoints]:
                for f in stale.iterdir():
                    f.unlink()
                stale.rmdir()

    def log(record):
        if device.type == "cuda":  # peak since the start, loading included
            record["max_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
        progress["history"].append(record)
        if accelerator.is_main_process:
            with open(log_file, "a") as f:
                f.write(json.dumps(record) + "\n")

    # --- loop
    while progress["step"] < total_steps:
        epoch = progress["epoch"]
        dataset.epoch = epoch
        epoch_plan = epoch_batches(cfg, train["group"], epoch, rank, world)
        epoch_plan = epoch_plan[:len(epoch_plan) - len(epoch_plan) % cfg.grad_accum]  # whole optimizer steps only
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=epoch_plan[progress["batch"]:],
                                             num_workers=min(cfg.num_workers, os.cpu_count() or 1),
                                             collate_fn=collate, pin_memory=collate.raw,
                                             # its own generator: making the iterator must not draw from the
                                             # global RNG that dropout uses, or a resumed run would diverge
                                             generator=torch.Generator().manual_seed(cfg.seed + epoch))
        model.train()
        for inputs, owner, index in loader:
            if timer:
                timer.mark("data")  # waiting on the loader since the last step ended
            inputs = collate.finish(inputs, device, dtype)
            owner, rows = owner.to(device), index.cpu()
            with accelerator.accumulate(model):
                row_logp = level_word_logprobs(model, inputs, level_ids, mrope, use_cache=False)  # (R, L)
                member = torch.nn.functional.one_hot(owner, len(rows)).T.to(row_logp.dtype)  # (B, R)
                score = video_scores(row_logp, member, values)  # (B,)
                row_target = targets[rows].to(device)[owner]  # (R, L): each prompt is taught its video's level
                parts = {"level": cfg.level_weight * losses.level_loss(row_logp, row_target, member)}
                if cfg.plcc_weight:
                    parts["plcc"] = cfg.plcc_weight * losses.plcc_loss(score, score_target[rows].to(device))
                if cfg.rank_weight:
                    groups = group_ids[rows].to(device) if group_ids is not None else None
                    parts["rank"] = cfg.rank_weight * losses.rank_loss(score, score_target[rows].to(device), groups)
                loss = sum(parts.values())
                if timer:
                    timer.mark("forward")  # the copy to the device included
                accelerator.backward(loss)
                if timer:
                    timer.mark("backward")
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                if timer:
                    timer.mark("optimizer")
            progress["batch"] += 1
            running.append({k: v.detach() for k, v in parts.items()} | {"loss": loss.detach()})  # read at log time:
            # .item() here would make the host wait for the GPU every step
            if not accelerator.sync_gradients:
                continue
            progress["step"] += 1
            bar.update(1)
            if progress["step"] % cfg.log_every == 0 or progress["step"] == total_steps:
                mean = {k: float(torch.stack([r[k].float() for r in running]).mean()) for k in running[0]}
                # the dual encoder's gate, and how much the fusion adds to the global view's tokens (the last
                # batch's ||added|| / ||global||), plotted by the HIVE ablation
                gate = {"gate_tanh": round(float(p.detach().float().tanh()), 5) for n, p in unwrapped.named_parameters()
                        if p.requires_grad and FUSION in n and n.endswith(".gate")}
                gate |= {"fusion_share": round(float(m.share), 5) for m in unwrapped.modules()
                         if isinstance(m, LocalGlobalFusion) and m.share is not None}
                log({"step": progress["step"], "epoch": epoch, "lr": scheduler.get_last_lr()[0],
                     "seconds": round(time.perf_counter() - started, 1), **mean, **gate,
                     **(timer.report() if timer else {})})
                bar.set_postfix(loss=f"{mean['loss']:.4f}")
                running = []
            if progress["step"] >= total_steps:
                break
            if cfg.save_every and progress["step"] % cfg.save_every == 0:
                checkpoint()
        if progress["batch"] >= len(epoch_plan):
            progress["epoch"], progress["batch"] = epoch + 1, 0

        # --- validation at the end of each epoch and of training: the best becomes the output scorer
        result = {"step": progress["step"], "epoch": epoch}
        if val is not None and (epoch + 1) % cfg.val_every and progress["step"] < total_steps:
            checkpoint()  # not a validation epoch
            continue
        if val is not None and accelerator.is_main_process:
            result |= {f"val_{k}": v for k, v in validate(Scorer(unwrapped, processor, scorer_cfg), val, metric,
                                                           cfg).items()}
            result["seconds"] = round(time.perf_counter() - started, 1)  # validation's own time included
            name = "AIM 2024 final" if metric == "aim2024" else "NTIRE 2023 main"
            print(f"epoch {epoch} step {progress['step']}: val {name} {result['val_challenge']:.4f} (the challenge's "
                  f"metric, absolute values); selection score {result['val_metric']:.4f} (the same with signs: "
                  f"picks the best epoch); SRCC {result['val_srcc']:.4f}, PLCC (cubic) {result['val_plcc']:.4f}")
        log(result)
        if accelerator.is_main_process and (val is None or result["val_metric"] > progress["best"]):
            progress["best"], progress["best_step"] = result.get("val_metric", math.nan), progress["step"]
            save_scorer(out, unwrapped, processor, cfg, {"metric": metric, **result})
        checkpoint()
    bar.close()
    accelerator.wait_for_everyone()

    # --- after training: curve, merged weights
    summary = {"output_dir": str(out), "steps": progress["step"], "metric": metric, "best": progress["best"],
               "best_step": progress["best_step"], "trainable_parameters": n_train, "total_parameters": n_total,
               # bitsandbytes' own layers (peft's LoRA wrappers of them share their class names)
               "quantized_layers": sum(type(m).__module__.startswith("bitsandbytes") for m in unwrapped.modules())}
    if accelerator.is_main_process:
        from lmm_vqa.report import training_curve_plot

        training_curve_plot(progress["history"], out / "curve.png", metric)
        if cfg.merge:
            merge_adapter(out, out / "merged", device.type)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"best val selection score ({metric}, signed) {progress['best']:.4f} at step {progress['best_step']}; "
              f"score with: lmm-vqa score VIDEOS --model {out}")
    accelerator.end_training()
    return summary


def merge_adapter(adapter_dir: Path, merged_dir: Path, device: str) -> None:
    """The adapter folder as a plain checkpoint: LoRA merged into the base weights."""
    from transformers import AutoProcessor

    ckpt = describe(adapter_dir)
    if ckpt.kind != "adapter":  # trained without LoRA: the folder already holds full weights
        return
    model = load_model(ckpt, "cpu", torch.float32).merge_and_unload()
    model.save_pretrained(merged_dir)
    AutoProcessor.from_pretrained(adapter_dir).save_pretrained(merged_dir)
    (merged_dir / SCORER_FILE).write_text((adapter_dir / SCORER_FILE).read_text())


if __name__ == "__main__":
    main()
