"""Score agreement on a GPU: bf16 against fp32, and each against itself across batch sizes, on tiny random
checkpoints of every family scoring the test video zoo (real files of every codec and odd sizes).

    python eval/bench_dtype.py --work /tmp/dtype --record eval/results/dtype_agreement.json

Prints, per family and dtype, the largest score difference (1-5 scale) between batch sizes 2 and 7 and
batch size 1, and between bf16 and fp32 at batch size 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import record


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default="/tmp/dtype")
    p.add_argument("--record", help="result file (default eval/results/dtype_agreement.json)")
    args = p.parse_args(argv)
    from lmm_vqa.backbones import BACKBONES
    from lmm_vqa.checkpoints import load_scorer
    from lmm_vqa.testing import build_tiny_checkpoint, write_test_videos

    work = Path(args.work)
    videos = write_test_videos(work / "videos")
    paths = [videos[k] for k in ("h264", "hevc", "vp9", "av1", "odd_size", "portrait", "image", "one_frame")]
    rows = []
    for family in sorted(BACKBONES):
        for single in (True, False):
            folder = build_tiny_checkpoint(family, work / f"{family}_{single}", levels_single_token=single)
            scores = {}
            for dtype in ("bf16", "fp32"):
                scorer = load_scorer(folder, device="cuda", dtype=dtype, frames="fps:5", max_frames=3)
                for bs in (1, 2, 7):
                    scores[dtype, bs] = np.array([r["score"] for r in scorer.score_paths(paths, batch_size=bs)])
            rows.append({"family": family, "level_words": "one token" if single else "several tokens",
                         **{f"{d}_batch_max_diff": float(max(np.abs(scores[d, b] - scores[d, 1]).max() for b in (2, 7)))
                            for d in ("bf16", "fp32")},
                         "bf16_vs_fp32_max_diff": float(np.abs(scores["bf16", 1] - scores["fp32", 1]).max())})
    print(f"{'family':<18}{'level words':<16}{'bf16 batch':>12}{'fp32 batch':>12}{'bf16 vs fp32':>14}")
    for r in rows:
        print(f"{r['family']:<18}{r['level_words']:<16}{r['bf16_batch_max_diff']:>12.4f}"
              f"{r['fp32_batch_max_diff']:>12.2e}{r['bf16_vs_fp32_max_diff']:>14.4f}")
    print(f"wrote {record.write('dtype_agreement', rows, args.record)}")


if __name__ == "__main__":
    main()
