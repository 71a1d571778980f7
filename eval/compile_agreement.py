"""Do compiled and eager scoring agree? The same videos scored with the language model eager and under
torch.compile, in one dtype; prints the largest score difference (1-5 scale) beside the scores' own spread.

    python eval/compile_agreement.py VIDEO_DIR [--model M] [--dtype bf16] [--device cuda] [--record PATH]

Default model: the bundled demo model (trained weights, unlike the random 7B shapes of bench_score.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import record


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("videos")
    p.add_argument("--model")
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--device", default="cpu")
    p.add_argument("--limit", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--record", help="result file (default eval/results/compile_agreement.json)")
    args = p.parse_args(argv)
    from lmm_vqa.checkpoints import load_scorer

    paths = sorted(str(x) for x in Path(args.videos).rglob("*.mp4"))[:args.limit]
    scores, seconds = {}, {}
    for mode in ("off", "on"):
        scorer = load_scorer(args.model, device=args.device, dtype=args.dtype, compile=mode)
        start = time.perf_counter()
        rows = list(scorer.score_paths(paths, batch_size=args.batch_size))
        seconds[mode] = time.perf_counter() - start  # compile's warm-up included
        scores[mode] = np.array([r["score"] for r in rows])
    diff = float(np.abs(scores["on"] - scores["off"]).max())
    figures = {"model": args.model or "demo", "dtype": args.dtype, "device": args.device, "videos": len(paths),
               "max_score_diff": diff, "score_sd": float(scores["off"].std()), "seconds": seconds}
    print(f"{len(paths)} videos, {args.dtype} on {args.device}: compiled vs eager, largest score difference {diff:.4f} "
          f"(scores' own sd {figures['score_sd']:.4f}); {seconds['off']:.1f} s eager, {seconds['on']:.1f} s compiled "
          "with its warm-up")
    print(f"wrote {record.write('compile_agreement', figures, args.record)}")


if __name__ == "__main__":
    main()
