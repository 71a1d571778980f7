"""Do compiled and eager scoring agree? The same videos scored with the language model eager and under
torch.compile, in one dtype; prints the largest score difference (1-5 scale) beside the scores' own spread.
`--against fp8` (or fp8+compile): FP8 scoring against eager bf16 instead (a Hopper-class GPU and torchao).

    python eval/compile_agreement.py VIDEO_DIR [--model M] [--dtype bf16] [--device cuda] [--record PATH]
    python eval/compile_agreement.py VIDEO_DIR --device cuda --against fp8

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
    p.add_argument("--against", choices=["compile", "fp8", "fp8+compile"], default="compile",
                   help="what eager --dtype scoring is compared with (default: itself compiled)")
    p.add_argument("--fp8-scaling", choices=["row", "tensor"], help="with --against fp8*: lmm_vqa/fp8.py's scaling")
    p.add_argument("--record", help="result file (default eval/results/compile_agreement.json, fp8_agreement.json)")
    args = p.parse_args(argv)
    from lmm_vqa.checkpoints import load_scorer

    paths = sorted(str(x) for x in Path(args.videos).rglob("*.mp4"))[:args.limit]
    candidate = {"compile": (args.dtype, "on"), "fp8": ("fp8", "off"), "fp8+compile": ("fp8", "on")}[args.against]
    scores, seconds = {}, {}
    for name, (dtype, compile) in (("off", (args.dtype, "off")), ("on", candidate)):
        scaling = args.fp8_scaling if dtype == "fp8" else None
        scorer = load_scorer(args.model, device=args.device, dtype=dtype, compile=compile, fp8_scaling=scaling)
        start = time.perf_counter()
        rows = list(scorer.score_paths(paths, batch_size=args.batch_size))
        seconds[name] = time.perf_counter() - start  # compile's warm-up included
        scores[name] = np.array([r["score"] for r in rows])
        del scorer
    diff = float(np.abs(scores["on"] - scores["off"]).max())
    label = {"compile": "compiled", "fp8": "fp8", "fp8+compile": "fp8 compiled"}[args.against]
    figures = {"model": args.model or "demo", "dtype": args.dtype, "device": args.device, "videos": len(paths),
               "against": args.against, "fp8_scaling": args.fp8_scaling if "fp8" in args.against else None,
               "max_score_diff": diff,
               "mean_score_diff": float(np.abs(scores["on"] - scores["off"]).mean()),
               "score_sd": float(scores["off"].std()), "seconds": seconds}
    print(f"{len(paths)} videos, {args.dtype} on {args.device}: {label} vs eager, largest score difference {diff:.4f} "
          f"(mean {figures['mean_score_diff']:.4f}; scores' own sd {figures['score_sd']:.4f}); {seconds['off']:.1f} s "
          f"eager, {seconds['on']:.1f} s {label}, warm-up included")
    name = "compile_agreement" if args.against == "compile" else "fp8_agreement"
    print(f"wrote {record.write(name, figures, args.record)}")


if __name__ == "__main__":
    main()
