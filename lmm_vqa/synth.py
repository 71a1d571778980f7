"""Synthetic challenge data: real encoded videos, challenge-like degradations, pseudo-MOS.

Each source is a natural image shipped with scikit-image (or a procedural texture), panned and
zoomed into a moving clip. Each source is degraded in several ways and encoded; a pseudo-MOS
comes from a full-reference measure (SSIM of the decoded video against the pristine clip).

Layouts (read unchanged by `lmm_vqa.data.load_labels`):
- vdpve: `{split}/labels.txt` with `name,mos` lines (MOS 0-100) and videos `{split}/{A|B|C}_...mp4`
  (A colour/brightness/contrast, B shake, C blur/over-sharpening), as VDPVE's sub-datasets.
- cvqad: `{split}/Subjective_scores.csv` in CVQAD's columns; videos `{split}/{sequence}/...`;
  each source compressed with H.264/HEVC/VP9/AV1 at several CRFs and two presets; scores are
  group-relative (Bradley-Terry-like, min 0 inside each (sequence, preset) group).
Splits are by source: no source is in two splits.
"""

from __future__ import annotations

import csv
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

SOURCES = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
           "colorwheel", "camera", "coins", "horse", "moon", "brick", "grass", "gravel", "clock"]
CVQAD_CODECS = {"h264": (18, 28, 38, 46), "hevc": (20, 30, 40, 48), "vp9": (20, 36, 50, 60), "av1": (20, 36, 50, 60)}
CVQAD_PRESETS = {"fast": {"libx264": "veryfast", "libx265": "veryfast", "libvpx-vp9": "8", "libsvtav1": "12"},
                 "offline": {"libx264": "slow", "libx265": "medium", "libvpx-vp9": "2", "libsvtav1": "8"}}


def source_image(index: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8: a scikit-image sample, or a procedural texture past the list's end."""
    if index < len(SOURCES):
        from skimage import data

        img = getattr(data, SOURCES[index])()
        if img.dtype == bool:  # binary samples (horse)
            img = img.astype(np.uint8) * 255
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        return np.ascontiguousarray(img[..., :3])
    yy, xx = np.mgrid[0:512, 0:512] / 512.0
    f = rng.uniform(2, 12, 6)
    chans = [np.sin(2 * np.pi * (f[c] * xx + f[c + 3] * yy) + rng.uniform(0, 6)) for c in range(3)]
    noise = rng.normal(0, 0.3, (512, 512, 3))
    return np.clip(127 + 90 * np.stack(chans, -1) + 30 * noise, 0, 255).astype(np.uint8)


def render_clip(img: np.ndarray, size: tuple[int, int], num_frames: int, rng) -> np.ndarray:
    """(T, H, W, 3) uint8: a slow pan and zoom over `img`, output `size` = (W, H)."""
    from PIL import Image

    w, h = size
    src = Image.fromarray(img)
    sw, sh = src.size
    zoom0, zoom1 = rng.uniform(0.55, 0.8), rng.uniform(0.55, 0.8)
    cx0, cy0, cx1, cy1 = rng.uniform(0.35, 0.65, 4)
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    for t in range(num_frames):
        a = t / max(1, num_frames - 1)
        z = zoom0 + (zoom1 - zoom0) * a
        cw = min(sw, sh * w / h) * z  # crop box with the output's aspect ratio
        ch = cw * h / w
        cx = (cx0 + (cx1 - cx0) * a) * (sw - cw) + cw / 2
        cy = (cy0 + (cy1 - cy0) * a) * (sh - ch) + ch / 2
        box = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
        frames[t] = np.asarray(src.resize((w, h), Image.BICUBIC, box=box))
    return frames


def degrade(frames: np.ndarray, kind: str, strength: float, rng) -> np.ndarray:
    """Apply one degradation of `strength` in [0, 1] to (T, H, W, 3) uint8 frames."""
    from scipy import ndimage

    x = frames.astype(np.float32)
    if kind == "brightness":
        x = x * (1 + rng.choice([-0.6, 0.6]) * strength)
    elif kind == "contrast":
        x = (x - 128) * (1 - 0.8 * strength) + 128 + rng.uniform(-20, 20) * strength
    elif kind == "colour":
        grey = x.mean(-1, keepdims=True)
        x = grey + (x - grey) * (1 + rng.choice([-0.9, 1.5]) * strength) + np.array([30, -10, -25]) * strength
    elif kind == "blur":
        x = ndimage.gaussian_filter(x, sigma=(0, 0.5 + 4 * strength, 0.5 + 4 * strength, 0))
    elif kind == "sharpen":
        blur = ndimage.gaussian_filter(x, sigma=(0, 1.5, 1.5, 0))
        x = x + 4 * strength * (x - blur)
    elif kind == "noise":
        x = x + rng.normal(0, 40 * strength, x.shape)
    elif kind == "shake":
        amp = 2 + 0.06 * frames.shape[2] * strength
        for t in range(len(x)):
            x[t] = ndimage.shift(x[t], (rng.normal(0, amp), rng.normal(0, amp), 0), mode="nearest", order=1)
    elif kind != "none":
        raise ValueError(f"unknown degradation {kind!r}")
    return np.clip(x, 0, 255).astype(np.uint8)


def decoded_ssim(path: Path, reference: np.ndarray) -> float:
    """Mean SSIM (luma, frames subsampled) of an encoded file against the pristine frames."""
    from skimage.metrics import structural_similarity

    from lmm_vqa.video import load_frames

    got = load_frames(path, f"uniform:{min(8, len(reference))}", max_frames=8)
    vals = []
    for frame, i in zip(got.frames, got.indices):
        a = reference[min(i, len(reference) - 1)].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        b = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        vals.append(structural_similarity(a, b, data_range=255.0))
    return float(np.mean(vals))


def _splits(num_sources: int, rng) -> dict[str, list[int]]:
    order = rng.permutation(num_sources).tolist()
    n_test = max(1, round(0.2 * num_sources)) if num_sources >= 3 else 0
    n_val = max(1, round(0.2 * num_sources)) if num_sources >= 3 else 0
    return {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}


def _vdpve_source(folder: Path, s: int, size, seconds: float, fps: int, seed: int) -> list[str]:
    """All degraded versions of source `s`: label lines `name,mos`. Its own RNG, so sources can be
    made in any order or in parallel and give the same files."""
    from lmm_vqa.encoding import write_video

    rng = np.random.default_rng([seed, s])
    plan = {"A": ["brightness", "contrast", "colour"], "B": ["shake"], "C": ["blur", "sharpen", "noise"]}
    clip = render_clip(source_image(s, rng), size, max(1, round(seconds * fps)), rng)
    lines = []
    for subset, kinds in plan.items():
        for kind in kinds:
            for level in (0.15, 0.5, 0.9):
                name = f"{subset}_{s:03d}_{kind}_{int(level * 100):02d}.mp4"
                write_video(folder / name, degrade(clip, kind, level, rng), fps=fps, crf=int(rng.integers(18, 30)))
                q = decoded_ssim(folder / name, clip)
                lines.append(f"{name},{100 * np.clip((q - 0.2) / 0.8, 0, 1) ** 1.5:.3f}")
    return lines


def _cvqad_source(folder: Path, s: int, size, seconds: float, fps: int, seed: int) -> list[dict]:
    """Every codec x CRF x preset encoding of source `s`: CVQAD rows."""
    from lmm_vqa.data import CVQAD_NAME_PATTERN
    from lmm_vqa.encoding import CODECS, write_video

    rng = np.random.default_rng([seed, s])
    seq = f"{SOURCES[s] if s < len(SOURCES) else 'texture'}-{s:03d}".replace("_", "-")
    clip = render_clip(source_image(s, rng), size, max(1, round(seconds * fps)), rng)
    rows = []
    for preset, speed in CVQAD_PRESETS.items():
        group = []
        for codec, crfs in CVQAD_CODECS.items():
            encoder = CODECS[codec][0]
            for crf in crfs:
                row = {"codec": codec, "preset": preset, "sequence": seq, "crf": crf, "standard": codec, "bitrate": ""}
                path = folder / CVQAD_NAME_PATTERN.format(**row)
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, clip, fps=fps, codec=codec, crf=crf, preset=speed[encoder])
                kbps = path.stat().st_size * 8 / 1000 / max(seconds, 1 / fps)
                q = decoded_ssim(path, clip)
                group.append({**row, "real_bitrate": round(kbps, 1), "quality": -math.log10(max(1e-4, 1 - q))})
        # Bradley-Terry-like: a log-odds scale, only differences inside the group mean anything.
        low = min(g["quality"] for g in group)
        mid = np.median([g["real_bitrate"] for g in group])
        for g in group:
            g["subjective_score"] = round(3.0 * (g.pop("quality") - low), 6)
            g["bitrate"] = "high" if g["real_bitrate"] >= mid else "low"
        rows += group
    return rows


def _write_labels(layout: str, folder: Path, records: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if layout == "vdpve":
        (folder / "labels.txt").write_text("\n".join(records) + "\n")
        return
    from lmm_vqa.data import CVQAD_COLUMNS

    with open(folder / "Subjective_scores.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, CVQAD_COLUMNS)
        writer.writeheader()
        writer.writerows(records)


def videos_per_source(layout: str) -> int:
    return 21 if layout == "vdpve" else 2 * sum(len(c) for c in CVQAD_CODECS.values())


def make(out_dir, layout: str = "vdpve", sources: int = 10, size=(1280, 720), seconds: float = 5.0,
         fps: int = 25, seed: int = 0, progress=None, workers: int = 1) -> dict:
    """Write a synthetic dataset; returns {split: number of videos}. Sources are made in
    `workers` processes; the files do not depend on it."""
    if layout not in ("vdpve", "cvqad"):
        raise ValueError(f"layout must be vdpve or cvqad, got {layout!r}")
    if sources < 1:
        raise ValueError("need at least one source")
    w, h = size
    if w % 2 or h % 2 or min(w, h) < 64:
        raise ValueError(f"size must be even and at least 64 px on each side (AV1), got {w}x{h}")
    out = Path(out_dir)
    make_source = _vdpve_source if layout == "vdpve" else _cvqad_source
    splits = _splits(sources, np.random.default_rng(seed))
    jobs = [(split, s) for split, ids in splits.items() for s in ids]
    for split in splits:
        (out / split).mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, int], list] = {}
    # spawn, not fork: a forked copy of a process that already runs torch's or the codecs' threads can
    # fail to open an encoder
    with ProcessPoolExecutor(max(1, workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(make_source, out / split, s, (w, h), seconds, fps, seed): (split, s) for split, s in jobs}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            if progress:
                progress.update(videos_per_source(layout))
    counts = {}
    for split, ids in splits.items():
        records = [r for s in ids for r in results[(split, s)]]
        _write_labels(layout, out / split, records)
        counts[split] = len(records)
    return counts
