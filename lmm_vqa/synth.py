"""Synthetic challenge data: real encoded videos, challenge-like degradations, pseudo-MOS.

Each source is a natural image shipped with scikit-image (or a dead-leaves picture), panned and
zoomed into a moving clip. Each source is degraded in several ways and encoded; a pseudo-MOS
comes from a full-reference measure (SSIM of the decoded video against the pristine clip).

Layouts (read unchanged by `lmm_vqa.data.load_labels`):
- vdpve: `{split}/labels.txt` with `name,mos` lines (MOS 0-100) and videos `{split}/{A|B|C}_...mp4`
  (A colour/brightness/contrast, B shake, C blur/over-sharpening), as VDPVE's sub-datasets.
- cvqad: `{split}/Subjective_scores.csv` in CVQAD's columns; videos `{split}/{sequence}/...`;
  each source compressed with H.264/HEVC/VP9/AV1 at several CRFs and two presets; scores are
  group-relative (Bradley-Terry-like, min 0 inside each (sequence, preset) group).
- graded: `{split}/labels.txt` as vdpve; distortions visible in the frames alone (blur, noise, real
  H.264 blocking, over/under-exposure, low contrast, banding, down-then-up scaling) at four strengths,
  labelled by what was done (MOS = 100 - 80 * strength), kinds put on one scale by a calibration (see
  GRADED_PARAMS); variants `local` (fine noise that only a native-resolution view shows), `clustered`
  (mild strengths: MOS crowds into a narrow band) and `narrow` (the plain variant's clips, their MOS squeezed
  into 62-80, one bin of five: crowded labels on differences the model can see). `versions` makes only some of each source's versions
  (its pristine clip and K others drawn at random), for training sets with more content per video.
Splits are by source: no source is in two splits.
"""

from __future__ import annotations

import csv
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import partial
from pathlib import Path

import numpy as np

SOURCES = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
           "colorwheel", "camera", "coins", "horse", "moon", "brick", "grass", "gravel", "clock"]
CVQAD_CODECS = {"h264": (18, 28, 38, 46), "hevc": (20, 30, 40, 48), "vp9": (20, 36, 50, 60), "av1": (20, 36, 50, 60)}
CVQAD_PRESETS = {"fast": {"libx264": "veryfast", "libx265": "veryfast", "libvpx-vp9": "8", "libsvtav1": "12"},
                 "offline": {"libx264": "slow", "libx265": "medium", "libvpx-vp9": "2", "libsvtav1": "8"}}


def source_image(index: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8: a scikit-image sample, or a dead-leaves picture past the list's end."""
    if index < len(SOURCES):
        from skimage import data

        img = getattr(data, SOURCES[index])()
        if img.dtype == bool:  # binary samples (horse)
            img = img.astype(np.uint8) * 255
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        return np.ascontiguousarray(img[..., :3])
    return dead_leaves(rng)


def dead_leaves(rng: np.random.Generator, size: int = 1024, shapes: int = 2500) -> np.ndarray:
    """(size, size, 3) uint8: the dead-leaves model of natural images, occluding discs and rectangles
    whose radii follow a power law (density ~ r^-3: the picture looks alike at every scale), each with its
    own colour, shading and, for some, a fine texture; sharp edges, flat areas and smooth gradients, so
    every graded distortion has something to act on. Content for as many sources as asked, none alike."""
    r_min, r_max = size / 128, size / 3
    u = rng.uniform(size=shapes)  # inverse CDF of p(r) ~ r^-3 on [r_min, r_max]
    radii = (r_min ** -2 - u * (r_min ** -2 - r_max ** -2)) ** -0.5
    hsv = np.stack([rng.uniform(size=shapes), rng.beta(2, 3, shapes) * 0.8, rng.beta(3, 2, shapes)], 1)
    from skimage.color import hsv2rgb

    colours = hsv2rgb(hsv[None])[0] * 255
    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = colours[0]
    for r, colour in zip(radii[1:], colours[1:]):
        cx, cy = rng.uniform(0, size, 2)
        x0, x1 = int(max(0, cx - r)), int(min(size, cx + r + 1))
        y0, y1 = int(max(0, cy - r)), int(min(size, cy + r + 1))
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = (xx - cx) / r, (yy - cy) / r
        if rng.uniform() < 0.6:
            mask = dx * dx + dy * dy <= 1
        else:  # a rotated rectangle of random aspect
            a, aspect = rng.uniform(0, np.pi), rng.uniform(0.3, 1.0)
            mask = (np.abs(dx * np.cos(a) + dy * np.sin(a)) <= 0.8) & (np.abs(dy * np.cos(a) - dx * np.sin(a)) <= 0.8 * aspect)
        angle = rng.uniform(0, 2 * np.pi)
        shade = 1 + rng.uniform(-0.25, 0.25) * (dx * np.cos(angle) + dy * np.sin(angle))
        if rng.uniform() < 0.3:  # a fine stripe texture, period 3-12 px
            period, b = rng.uniform(3, 12), rng.uniform(0, np.pi)
            shade = shade * (1 + rng.uniform(0.04, 0.15) * np.sin(2 * np.pi * (xx * np.cos(b) + yy * np.sin(b)) / period))
        canvas[y0:y1, x0:x1][mask] = (colour * shade[..., None])[mask]
    yy, xx = np.mgrid[0:size, 0:size] / size  # soft illumination across the picture
    canvas *= (1 + 0.2 * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)))[..., None]
    from scipy import ndimage

    canvas = ndimage.gaussian_filter(canvas, sigma=(0.6, 0.6, 0))  # the optics' anti-aliasing
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


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


# ----------------------------------------------------------------------------- graded: labelled by what was done
#
# Distortions a viewer sees in the frames alone (no reference needed), each at four strengths. The label
# depends only on the strength: MOS = 100 - 80 * s (s = 0 for the pristine clip), whatever the kind and the
# content. Kinds are put on one scale by their parameters: at each strength every kind's parameter was set
# (eval/calibrate_graded.py, bisection) so that its mean luma SSIM against the pristine frame, over the
# calibration sources at 1280x720, hits the same target (GRADED_SSIM); SSIM is the one full-reference
# measure that reacts to all of them, and it is used once, to set parameters, never per clip.
GRADED_STRENGTHS = (0.25, 0.5, 0.75, 1.0)
GRADED_SSIM = (0.96, 0.91, 0.86, 0.81)  # the calibration targets at those strengths
# kind -> its parameter at each strength: eval/calibrate_graded.py's output (6 sources at 1280x720), see
# docs/benchmarks.md. SSIM is harsh on noise and lenient on blur over smooth areas, and the table inherits that.
GRADED_PARAMS = {
    "blur": (1.704, 2.915, 4.448, 7.036),  # Gaussian sigma, px at 1280 wide
    "noise": (2.856, 4.468, 5.786, 7.056),  # Gaussian sigma, 8-bit levels, per pixel and channel
    "compression": (26, 35, 40, 44),  # H.264 CRF (blocking and ringing from a real encoder)
    "bright": (1.238, 1.418, 1.606, 1.804),  # gain, highlights clipped
    "dark": (1.29, 1.471, 1.643, 1.814),  # divisor
    "contrast": (0.77, 0.562, 0.415, 0.294),  # contrast kept around the mean
    "banding": (4.581, 3.713, 3.046, 2.643),  # bits per channel
    "rescale": (3.623, 5.994, 8.86, 13.687),  # down by this factor, back up (bicubic)
}
# The same calibration at 224x128 and 448x256, sizes a 224-448 px encoder sees whole (6 sources each; tables in
# docs/benchmarks.md, eval/results/graded_calibration_224x128.json and _448x256.json). There the content,
# scaled down, is dense with detail: the 1280x720 table's noise and blur come out far milder than their labels say,
# and its rescale factors and CRFs far harsher, so a clip made at a small size uses the table of the nearest width.
GRADED_PARAMS_BY_WIDTH = {
    224: {
        "blur": (3.696, 5.229, 6.851, 8.657),
        "noise": (3.833, 6.128, 8.13, 10.132),
        "compression": (20, 26, 29, 32),
        "bright": (1.216, 1.35, 1.487, 1.635),
        "dark": (1.252, 1.414, 1.567, 1.7),
        "contrast": (0.775, 0.626, 0.524, 0.441),
        "banding": (4.183, 2.995, 2.653, 2.26),
        "rescale": (1.252, 1.871, 2.5, 3.138),
    },
    448: {
        "blur": (2.29, 3.501, 4.741, 6.147),
        "noise": (3.394, 5.396, 7.056, 8.667),
        "compression": (19, 27, 31, 35),
        "bright": (1.211, 1.353, 1.506, 1.675),
        "dark": (1.262, 1.433, 1.586, 1.738),
        "contrast": (0.78, 0.614, 0.499, 0.408),
        "banding": (4.375, 3.313, 2.82, 2.508),
        "rescale": (1.662, 2.595, 3.461, 4.413),
    },
    1280: GRADED_PARAMS,
}
# The local-detail variant: fine artefacts that a resize to the encoder's input (336-448 px) hides, while a
# native-resolution crop shows them: pixel-level noise on 1280x720 frames, calibrated as above to milder
# SSIM targets. (Codec artefacts do not qualify: H.264 at 720p, and even JPEG's 8x8 blocks, kept 75-87% of
# their RMS error after a resize to 336 px wide, where this noise keeps about a quarter.)
LOCAL_SSIM = (0.97, 0.94, 0.90, 0.86)
LOCAL_PARAMS = {
    "noise": (2.466, 3.54, 4.761, 5.786),
}
# The clustered variant: mild strengths only, so MOS crowds into 68-84 (a 5-level model sees one level there).
CLUSTERED_STRENGTHS = (0.2, 0.3, 0.4)
# The narrow variant: the plain variant's clips, pristine to strongest, labelled 80 down to 62. Q-Align's hard
# targets (0-100 cut into five equal bins) make all of it "good", (60, 80]; cut into nine, HIVE's finer words,
# it is great, good and decent. What separates it from the clustered variant is that these distortions are
# plain to see (there, mild strengths at 68, 76 and 84 fall in the same two bins, good and excellent / great,
# for both level sets).
NARROW_MOS = (80.0, 62.0)
GRADED_CLEAN_CRF = 12  # every clip but the compressed ones is encoded all but losslessly
# each kind's parameter at strength 0: no distortion
GRADED_NEUTRAL = {"blur": 0.0, "noise": 0.0, "compression": GRADED_CLEAN_CRF, "bright": 1.0, "dark": 1.0,
                  "contrast": 1.0, "banding": 8.0, "rescale": 1.0}


def graded_distort(frames: np.ndarray, kind: str, param: float) -> np.ndarray:
    """One frame-visible distortion of (T, H, W, 3) uint8 frames with its parameter (compression is the
    encoder's: the frames come back as they are)."""
    from scipy import ndimage

    x = frames.astype(np.float32)
    if kind == "blur":
        sigma = param * frames.shape[2] / 1280
        x = ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0))
    elif kind == "noise":
        x = x + np.random.default_rng(int(param * 1000)).normal(0, param, x.shape)
    elif kind == "bright":
        x = x * param
    elif kind == "dark":
        x = x / param
    elif kind == "contrast":
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * param + mean
    elif kind == "banding":
        step = 256 / 2 ** param
        x = (np.floor(x / step) + 0.5) * step
    elif kind == "rescale":
        from PIL import Image

        h, w = frames.shape[1:3]
        small = (max(1, round(w / param)), max(1, round(h / param)))
        x = np.stack([np.asarray(Image.fromarray(f).resize(small, Image.BOX).resize((w, h), Image.BICUBIC))
                      for f in frames]).astype(np.float32)
    elif kind not in ("compression", "none"):
        raise ValueError(f"unknown graded distortion {kind!r}; known: {sorted(GRADED_PARAMS)}")
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def graded_mos(strength: float, variant: str = "plain") -> float:
    if variant == "narrow":
        high, low = NARROW_MOS
        return round(high - (high - low) * strength, 3)
    return round(100 - 80 * strength, 3)


def graded_plan(variant: str) -> list[tuple[str, float]]:
    """(kind, strength) of every version of a source, the pristine one first."""
    if variant in ("plain", "narrow"):
        return [("none", 0.0)] + [(k, s) for k in GRADED_PARAMS for s in GRADED_STRENGTHS]
    if variant == "local":
        return [("none", 0.0)] + [(k, s) for k in LOCAL_PARAMS for s in GRADED_STRENGTHS]
    if variant == "clustered":
        return [(k, s) for k in GRADED_PARAMS for s in CLUSTERED_STRENGTHS]
    raise ValueError(f"variant must be plain, local, clustered or narrow, got {variant!r}")


def graded_table(width: int = 1280) -> dict:
    """The calibrated table for clips `width` px wide: the one calibrated at the nearest width (on a log scale)."""
    nearest = min(GRADED_PARAMS_BY_WIDTH, key=lambda w: abs(math.log(width / w)))
    return GRADED_PARAMS_BY_WIDTH[nearest]


def graded_param(kind: str, strength: float, variant: str = "plain", width: int = 1280) -> float:
    """A kind's parameter at any strength in [0, 1] for clips `width` px wide: the calibrated table, interpolated
    (0: no distortion)."""
    table = (LOCAL_PARAMS if variant == "local" else graded_table(width))[kind]
    return float(np.interp(strength, (0.0,) + GRADED_STRENGTHS, (GRADED_NEUTRAL[kind],) + table))


def graded_name(kind: str, source: int, strength: float) -> str:
    return f"{kind}_{source:03d}_{int(round(strength * 100)):03d}.mp4"


def parse_graded_name(name: str) -> tuple[str, str, float]:
    """(kind, source, strength) of a graded video's file name (graded_name's inverse)."""
    kind, source, strength = Path(name).stem.rsplit("_", 2)
    return kind, source, int(strength) / 100


def graded_versions(variant: str, source: int, seed: int, versions: int | None = None) -> list[tuple[str, float]]:
    """The (kind, strength) versions made of one source: the whole plan, or with `versions` its pristine clip
    (where the variant has one) and that many of its other versions, drawn at random per source."""
    plan = graded_plan(variant)
    if versions is None:
        return plan
    keep = [v for v in plan if v[0] == "none"]
    rest = [v for v in plan if v[0] != "none"]
    if not 1 <= versions <= len(rest):
        raise ValueError(f"versions must be 1 to {len(rest)} for the {variant} variant, got {versions}")
    picked = np.random.default_rng([seed, source, 1]).choice(len(rest), versions, replace=False)
    return keep + [rest[i] for i in sorted(picked)]


def _graded_source(folder: Path, s: int, size, seconds: float, fps: int, seed: int, variant: str = "plain",
                   versions: int | None = None) -> list[str]:
    from lmm_vqa.encoding import write_video

    rng = np.random.default_rng([seed, s])
    clip = render_clip(source_image(s, rng), size, max(1, round(seconds * fps)), rng)
    lines = []
    for kind, strength in graded_versions(variant, s, seed, versions):
        name = graded_name(kind, s, strength)
        param = graded_param(kind, strength, variant, width=size[0]) if kind != "none" else None
        if kind == "compression":
            write_video(folder / name, clip, fps=fps, crf=int(round(param)))
        else:
            frames = clip if kind == "none" else graded_distort(clip, kind, param)
            write_video(folder / name, frames, fps=fps, crf=GRADED_CLEAN_CRF)
        lines.append(f"{name},{graded_mos(strength, variant)}")
    return lines


def _write_labels(layout: str, folder: Path, records: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if layout in ("vdpve", "graded"):
        (folder / "labels.txt").write_text("\n".join(records) + "\n")
        return
    from lmm_vqa.data import CVQAD_COLUMNS

    with open(folder / "Subjective_scores.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, CVQAD_COLUMNS)
        writer.writeheader()
        writer.writerows(records)


def videos_per_source(layout: str, variant: str = "plain", versions: int | None = None) -> int:
    if layout == "graded":
        return len(graded_versions(variant, 0, 0, versions))
    return 21 if layout == "vdpve" else 2 * sum(len(c) for c in CVQAD_CODECS.values())


def make(out_dir, layout: str = "vdpve", sources: int = 10, size=(1280, 720), seconds: float = 5.0,
         fps: int = 25, seed: int = 0, progress=None, workers: int = 1, variant: str = "plain",
         versions: int | None = None) -> dict:
    """Write a synthetic dataset; returns {split: number of videos}. Sources are made in
    `workers` processes; the files do not depend on it. `variant` (graded layout): plain, local, clustered, narrow.
    `versions` (graded layout): each source's pristine clip and this many of its other versions, drawn at random
    per source, instead of all of them: more content for the same number of videos. A source's clips are the
    same clips the whole plan would make of it."""
    if layout not in ("vdpve", "cvqad", "graded"):
        raise ValueError(f"layout must be vdpve, cvqad or graded, got {layout!r}")
    if versions is not None and layout != "graded":
        raise ValueError(f"versions picks among the graded layout's versions; the {layout} layout makes all of them")
    per_source = videos_per_source(layout, variant, versions)  # validates the variant and the versions
    if sources < 1:
        raise ValueError("need at least one source")
    w, h = size
    if w % 2 or h % 2 or min(w, h) < 64:
        raise ValueError(f"size must be even and at least 64 px on each side (AV1), got {w}x{h}")
    out = Path(out_dir)
    make_source = {"vdpve": _vdpve_source, "cvqad": _cvqad_source,
                   "graded": partial(_graded_source, variant=variant, versions=versions)}[layout]
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
                progress.update(per_source)
    counts = {}
    for split, ids in splits.items():
        records = [r for s in ids for r in results[(split, s)]]
        _write_labels(layout, out / split, records)
        counts[split] = len(records)
    return counts
