"""How to compile the language model for scoring: warm-up and model-only frames/s of each way, one process each.

    python eval/compile_probe.py --work /tmp/bench --variants eager whole_dynamic whole_static regional_dynamic

The LLaVA-1.5-7B shape (random bf16 weights, eval/bench_score.py builds it), one batch of pre-processed frames
on the GPU, last-position logits only (as `lmm-vqa score`). Variants:
- eager: no compile;
- whole_dynamic: the language model's forward, dynamic shapes (what `--compile on` did before session 13);
- whole_static: the same, shapes fixed (a new batch size or prompt length compiles again);
- regional_dynamic / regional_static: each decoder layer compiled on its own (the layers share one code, so
  one compilation serves them all); regional_dynamic is what `lmm_vqa/compilation.py` now does.
All round fused intermediates as eager bf16 does (`emulate_precision_casts`). Prints a table and writes the
figures as JSON (--record).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
VARIANTS = ["eager", "whole_dynamic", "whole_static", "regional_dynamic", "regional_static"]


def run_variant(model: str, paths: list[str], variant: str, batch: int) -> dict:
    import bench_score

    from lmm_vqa.checkpoints import load_scorer
    from lmm_vqa.compilation import INDUCTOR_OPTIONS, decoder_layers, language_modules

    torch._dynamo.config.cache_size_limit = 64  # 32 layers share one code object: one entry each if guarded apart
    scorer = load_scorer(model, device="cuda", compile="off")
    dynamic = variant.endswith("dynamic")
    if variant.startswith("whole"):
        for lm in language_modules(scorer.model):
            lm.forward = torch.compile(lm.forward, dynamic=dynamic, options=INDUCTOR_OPTIONS)
    elif variant.startswith("regional"):
        for layer in decoder_layers(scorer.model):
            layer.compile(dynamic=dynamic, options=INDUCTOR_OPTIONS)
    texts, images, frames = bench_score.batch_of(scorer, bench_score.decoded_prompts(scorer, paths), batch)
    inputs = scorer.encode(texts, images)
    start = time.perf_counter()
    scorer.level_logprobs(inputs)
    torch.cuda.synchronize()
    warmup = time.perf_counter() - start
    scorer.level_logprobs(inputs)
    torch.cuda.synchronize()
    n, start = 10, time.perf_counter()
    for _ in range(n):
        out = scorer.level_logprobs(inputs)
    torch.cuda.synchronize()
    fps = n * frames / (time.perf_counter() - start)
    from torch._dynamo.utils import counters

    return {"variant": variant, "frames_s": fps, "warmup_s": warmup, "batch": frames,
            "graphs": int(counters["stats"]["unique_graphs"]), "logprobs": out.float().cpu().tolist()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default="/tmp/bench")
    p.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--one", help=argparse.SUPPRESS)  # a child process: run this variant, print its JSON
    p.add_argument("--record")
    args = p.parse_args(argv)
    import bench_score

    model, paths = bench_score.prepare(Path(args.work), 4)
    if args.one:
        print("RESULT " + json.dumps(run_variant(str(model), paths, args.one, args.batch_size)), flush=True)
        return
    results = []
    for variant in args.variants:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--work", args.work, "--batch-size", str(args.batch_size),
                               "--one", variant], capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"{variant}: failed\n{proc.stderr[-3000:]}", flush=True)
            continue
        r = json.loads(lines[-1][7:])
        r["process_s"] = time.perf_counter() - start
        results.append(r)
        print(f"{variant}: {r['frames_s']:.1f} frames/s, warm-up {r['warmup_s']:.1f} s, {r['graphs']} graphs, "
              f"process {r['process_s']:.0f} s", flush=True)
    import numpy as np

    base = next((np.array(r["logprobs"]) for r in results if r["variant"] == "eager"), None)
    print(f"\n{'variant':<20}{'frames/s':>10}{'warm-up s':>11}{'graphs':>8}{'max |dlogp| vs eager':>22}")
    for r in results:
        diff = float(np.abs(np.array(r["logprobs"]) - base).max()) if base is not None else float("nan")
        r["max_logprob_diff"] = diff
        print(f"{r['variant']:<20}{r['frames_s']:>10.1f}{r['warmup_s']:>11.1f}{r['graphs']:>8}{diff:>22.4f}")
    if args.record:
        import record

        for r in results:
            r.pop("logprobs")
        print(f"wrote {record.write('compile_probe', {'batch': args.batch_size, 'rows': results}, args.record)}")


if __name__ == "__main__":
    main()
