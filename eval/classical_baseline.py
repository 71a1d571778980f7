"""A classical no-reference baseline: hand-made quality features of the keyframes + ridge regression.

    python eval/classical_baseline.py --train data/synth_vdpve/train/labels.txt \
        --test data/synth_vdpve/test/labels.txt --out runs/baseline
    lmm-vqa evaluate runs/baseline/ridge.csv --labels data/synth_vdpve/test/labels.txt

Features per keyframe, averaged over the video: the Crété-Roffet blur measure (scikit-image
`blur_effect`), Immerkaer's noise estimate, RMS contrast, mean brightness and its distance from
mid-grey, Hasler-Süsstrunk colourfulness, mean gradient magnitude. Writes two prediction files in
`lmm-vqa score`'s format: `blur.csv` (minus the blur measure alone, nothing fitted) and `ridge.csv`
(all features, ridge regression fitted on the training labels).
"""

from __future__ import annotations

import argparse
import csv
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from lmm_vqa.data import load_labels
from lmm_vqa.video import load_frames

FEATURES = ["blur", "noise", "contrast", "brightness", "mid_grey_distance", "colourfulness", "gradient"]


def frame_features(rgb: np.ndarray) -> list[float]:
    from scipy.ndimage import convolve
    from skimage.measure import blur_effect

    x = rgb.astype(np.float32) / 255
    luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
    rg, yb = x[..., 0] - x[..., 1], 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    gy, gx = np.gradient(luma)
    # Immerkaer's fast noise estimate: a Laplacian difference kernel that cancels smooth image structure
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    noise = np.sqrt(np.pi / 2) / 6 * np.abs(convolve(luma, kernel, mode="reflect"))[1:-1, 1:-1].mean()
    return [blur_effect(luma), float(noise), float(luma.std()), float(luma.mean()),
            float(abs(luma.mean() - 0.5)), float(colourful), float(np.hypot(gx, gy).mean())]


def video_features(path: str, frames: str = "fps:2", max_frames: int = 4) -> np.ndarray:
    return np.mean([frame_features(f) for f in load_frames(path, frames, max_frames).frames], axis=0)


def features(paths: list[str], workers: int) -> np.ndarray:
    with ProcessPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(video_features, paths, chunksize=4)))


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1.0):
    mu, sd = x.mean(0), x.std(0) + 1e-8
    z = np.c_[(x - mu) / sd, np.ones(len(x))]
    w = np.linalg.solve(z.T @ z + alpha * np.diag([1.0] * x.shape[1] + [0.0]), z.T @ y)
    return lambda q: np.c_[(q - mu) / sd, np.ones(len(q))] @ w


def write_predictions(path: Path, paths: list[str], scores: np.ndarray) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "status", "score"])
        writer.writerows([p, "ok", f"{s:.6f}"] for p, s in zip(paths, scores))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args(argv)
    train, test = load_labels(args.train, check_files=True), load_labels(args.test, check_files=True)
    x_train, x_test = features(list(train["path"]), args.workers), features(list(test["path"]), args.workers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_predictions(out / "blur.csv", list(test["path"]), -x_test[:, 0])
    predict = fit_ridge(x_train, np.asarray(train["mos"]))
    write_predictions(out / "ridge.csv", list(test["path"]), predict(x_test))
    print(f"wrote {out / 'blur.csv'} and {out / 'ridge.csv'} ({len(test)} videos; features: {', '.join(FEATURES)})")


if __name__ == "__main__":
    main()
