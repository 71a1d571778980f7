"""Put the graded benchmark's distortions on one scale (lmm_vqa/synth.py, GRADED_PARAMS).

For each kind and strength, find by bisection the parameter whose mean luma SSIM against the pristine
frame, over the calibration sources (frame 0 of each source's clip at the benchmark's size), equals that
strength's target (GRADED_SSIM). Compression is searched over whole H.264 CRFs through a real encode and
decode; a target it cannot reach even at CRF 51 is reported as such.

    python eval/calibrate_graded.py --sources 4 --size 1280x720 --workers 2 [--variant local]

Prints the table to paste into GRADED_PARAMS (or GRADED_PARAMS_BY_WIDTH, for another size) and the SSIM each
parameter reaches; records eval/results/graded_calibration.json (graded_calibration_WxH.json at another size).
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import record
from lmm_vqa import synth

# kind -> (parameter at no distortion, parameter at its extreme); SSIM falls from the first to the second
EXTREME = {"blur": 40.0, "noise": 200.0, "compression": 51, "bright": 12.0, "dark": 40.0, "contrast": 0.01,
           "banding": 0.3, "rescale": 40.0}
SEARCH = {kind: (synth.GRADED_NEUTRAL[kind], extreme) for kind, extreme in EXTREME.items()}
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def frames_of(sources: int, size) -> list[np.ndarray]:
    out = []
    for s in range(sources):
        rng = np.random.default_rng([0, s])
        out.append(synth.render_clip(synth.source_image(s, rng), size, 2, rng))  # two frames: a clip to encode
    return out


def mean_ssim(kind: str, param: float, clips: list[np.ndarray]) -> float:
    from skimage.metrics import structural_similarity

    from lmm_vqa.encoding import write_video
    from lmm_vqa.video import load_frames

    vals = []
    for clip in clips:
        if kind == "compression":
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "c.mp4"
                write_video(path, clip, fps=25, crf=int(param))
                decoded = load_frames(path, "uniform:1", 1)
                got, ref = decoded.frames[0], clip[decoded.indices[0]]
        else:
            got, ref = synth.graded_distort(clip[:1], kind, param)[0], clip[0]
        vals.append(structural_similarity(ref.astype(np.float32) @ LUMA, got.astype(np.float32) @ LUMA,
                                          data_range=255.0))
    return float(np.mean(vals))


def calibrate(args) -> dict:
    kind, sources, size, targets = args
    clips = frames_of(sources, size)
    lo0, hi0 = SEARCH[kind]
    out = []
    for target in targets:
        lo, hi = lo0, hi0  # SSIM(lo) >= target >= SSIM(hi), if the target is reachable
        reach = mean_ssim(kind, hi, clips)
        if reach > target:
            out.append({"param": hi, "ssim": reach, "reached": False})
            continue
        for _ in range(6 if kind == "compression" else 12):
            mid = round((lo + hi) / 2) if kind == "compression" else (lo + hi) / 2
            if mid in (lo, hi):
                break
            if mean_ssim(kind, mid, clips) > target:
                lo = mid
            else:
                hi = mid
        param = hi if kind == "compression" else (lo + hi) / 2
        out.append({"param": round(float(param), 3), "ssim": round(mean_ssim(kind, param, clips), 4), "reached": True})
    return {"kind": kind, "levels": out}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sources", type=int, default=4)
    p.add_argument("--size", default="1280x720")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--variant", choices=["plain", "local"], default="plain",
                   help="local: the local-detail variant's kinds and milder targets (LOCAL_PARAMS, LOCAL_SSIM)")
    p.add_argument("--record", help="result file (default eval/results/graded_calibration.json)")
    args = p.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    kinds, targets = ((synth.LOCAL_PARAMS, synth.LOCAL_SSIM) if args.variant == "local"
                      else (synth.GRADED_PARAMS, synth.GRADED_SSIM))
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(calibrate, [(k, args.sources, size, targets) for k in kinds]))
    print(f"{args.variant}: targets (mean luma SSIM) at strengths {synth.GRADED_STRENGTHS}: {targets}")
    for r in results:
        params = tuple(lv["param"] for lv in r["levels"])
        reached = ", ".join(f"{lv['ssim']:.3f}{'' if lv['reached'] else ' (not reached)'}" for lv in r["levels"])
        print(f'    "{r["kind"]}": {params},  # SSIM {reached}')
    name = "graded_calibration" if args.variant == "plain" else "graded_calibration_local"
    name += "" if args.size == "1280x720" else f"_{args.size}"
    figures = {"variant": args.variant, "sources": args.sources, "size": args.size, "targets": targets,
               "kinds": results}
    print(f"wrote {record.write(name, figures, args.record)}")


if __name__ == "__main__":
    main()
