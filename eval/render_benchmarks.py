"""Render docs/benchmarks.md's tables (and the README's figures) from the results in eval/results/.

    python eval/render_benchmarks.py            # rewrite the marked blocks
    python eval/render_benchmarks.py --check    # exit 1 if a marked block differs from its results

A block is the text between `<!-- rendered: NAME -->` and `<!-- /rendered -->`; NAME picks the renderer
below and the result file it reads. Nothing between the markers is typed in by hand.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "eval" / "results"
DOCS = (ROOT / "docs" / "benchmarks.md", ROOT / "README.md")
BLOCK = re.compile(r"(<!-- rendered: (\w+) -->\n)(.*?)(<!-- /rendered -->)", re.S)


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def provenance(rec: dict, name: str | None = None) -> str:
    m, v = rec["machine"], rec["versions"]
    where = f"{m['gpu']} x{m['gpus']}" if "gpu" in m else "CPU"
    libs = ", ".join(f"{k} {v[k]}" for k in ("torch", "transformers", "peft", "bitsandbytes", "decord", "torchao") if k in v)
    return (f"`{rec['command']}` at commit {rec['commit'][:7]}, {rec['date']}, on {where} "
            f"({m['cpu_cores']} cores; {libs}); result: `eval/results/{name or rec['benchmark']}.json`.")


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def score_diff(row: dict) -> str:
    """A bench_score row's score difference against eager bf16, largest / mean, or "-" where it has none."""
    if "max_score_diff_vs_eager" not in row:
        return "-"
    return f"{row['max_score_diff_vs_eager']:.4f} / {row['mean_score_diff_vs_eager']:.4f}"


def dtype_agreement() -> str:
    rec = load("dtype_agreement")
    rows = [[r["family"], r["level_words"], f"{r['bf16_batch_max_diff']:.4f}", f"{r['fp32_batch_max_diff']:.1e}",
             f"{r['bf16_vs_fp32_max_diff']:.4f}"] for r in rec["figures"]]
    worst = max(r["bf16_batch_max_diff"] for r in rec["figures"])
    return (provenance(rec) + "\n\n"
            + table(["family", "level words", "bf16: batch 2, 7 vs 1", "fp32: batch 2, 7 vs 1", "bf16 vs fp32"], rows)
            + f"\n\nLargest score difference on the 1-5 scale, over 8 real files (every codec, odd sizes, an image). "
              f"Across batch sizes bf16 moves scores by up to {worst:.4f}; fp32 by under 1e-5.")


def gpu_tests(name: str = "gpu_tests") -> str:
    rec = load(name)
    rows = [[f"`{t['test']}`", t["outcome"], f"{t['seconds']:.1f}"] for t in rec["figures"]["tests"]]
    return provenance(rec) + "\n\n" + table(["test", "outcome", "seconds"], rows)


def train_cost(name: str = "train_cost") -> str:
    rec = load(name)
    rows = [[r["variant"], r["batch"], f"{r['samples_per_s']:.2f}", f"{r['peak_gib']:.2f} GiB",
             f"{r['trainable_m']:.1f} M", f"{r['loss_first']:.2f} -> {r['loss_last']:.2f}"] for r in rec["figures"]
            if "samples_per_s" in r]
    out = provenance(rec) + "\n\n" + table(["variant", "batch", "samples/s", "peak GPU memory", "trainable",
                                            "loss, first -> last step"], rows)
    split = [[r["variant"], f"{r['ms_data']:.0f}", f"{r['ms_forward']:.0f}", f"{r['ms_backward']:.0f}",
              f"{r['ms_optimizer']:.0f}"] for r in rec["figures"] if "ms_forward" in r]
    if split:
        out += ("\n\nWhere a step's time goes (ms per step of batch 8, the GPU synchronised between the parts):\n\n"
                + table(["variant", "data", "forward", "backward", "optimizer"], split))
    curves = [r["losses"] for r in rec["figures"] if "losses" in r]
    if len(curves) == 2:
        gap = sum(abs(a - b) for a, b in zip(*curves)) / len(curves[0])
        out += (f"\n\nLoss curves, step by step: mean absolute difference {gap:.3f} over {len(curves[0])} steps "
                f"(the same first step; bf16 kernels and recomputation order diverge from there).")
    return out


def score_throughput() -> str:
    rec = load("score_throughput")
    fig = rec["figures"]
    rows, ceiling = fig["rows"], fig["rows"]["model only"]["frames_s"]
    out = []
    for name, r in rows.items():
        vps = f"{r['videos_s']:.2f}" if "videos_s" in r else "-"
        mem = f"{r['mem_gib']:.1f}" if "mem_gib" in r else "-"
        out.append([name, vps, f"{r['frames_s']:.1f}", f"{100 * r['frames_s'] / ceiling:.0f}%", mem])
    setup = fig["setup"]
    by_batch = ", ".join(f"{b}: {v:.1f}" for b, v in rows["model only"]["all"].items())
    return (provenance(rec) + "\n\n"
            + f"{setup['videos']} real H.264 1280x720 10 s videos, `fps:1` keyframes, {setup['tokens_per_prompt']} "
              f"tokens per prompt, batch {setup['batch_size']}, {setup['workers']} decoding threads.\n\n"
            + table(["row", "videos/s", "frames/s", "of the model-only ceiling", "GPU GiB"], out)
            + f"\n\nModel-only frames/s by batch size: {by_batch}.")


def score_scaling() -> str:
    rec = load("score_scaling")
    runs = rec["figures"]["rows"]["scaling"]
    one = runs["1"]["frames_s"]
    rows = [[f"{n} x {rec['machine']['gpu']}", f"{r['frames_s']:.1f} ({r['frames_s'] / one:.2f}x)", f"{r['wall_s']:.1f} s"]
            for n, r in sorted(runs.items())]
    return provenance(rec) + "\n\n" + table(["devices", "frames/s, steady", "wall with model loading"], rows)


def score_compiled() -> str:
    rec = load("score_compiled")
    rows, ceiling = rec["figures"]["rows"], rec["figures"]["rows"]["model only"]["frames_s"]
    eager, comp = rows["end to end"], rows["end to end, compiled"]
    out = [[name, f"{r['frames_s']:.1f}", f"{100 * r['frames_s'] / ceiling:.0f}%", f"{r.get('warmup_s', 0):.1f} s"]
           for name, r in rows.items() if name != "model only"]
    return (provenance(rec) + "\n\n" + table(["row", "frames/s", "of the eager model-only ceiling",
                                               "warm-up (first 2 videos)"], out)
            + f"\n\nCompiled vs eager: {comp['frames_s'] / eager['frames_s']:.2f}x the frames/s; largest score "
              f"difference over the 24 videos {comp['max_score_diff_vs_eager']:.4f} on the 1-5 scale.")


def score_mplug() -> str:
    out, notes = [], []
    for name in ("score_mplug_frame", "score_mplug_clip"):
        rec = load(name)
        setup, rows = rec["figures"]["setup"], rec["figures"]["rows"]
        ceiling, e2e = rows["model only"], rows["end to end"]
        c = ceiling["frames_s"]
        out.append([setup["mode"], setup["tokens_per_prompt"], setup["batch_size"], f"{c:.1f}",
                    f"{100 * ceiling['vision_share']:.0f}%", f"{e2e['frames_s']:.1f} ({100 * e2e['frames_s'] / c:.0f}%)",
                    f"**{e2e['steady_frames_s']:.1f} ({100 * e2e['steady_frames_s'] / c:.0f}%)**"])
        notes.append(provenance(rec))
    table_ = table(["mode", "tokens per prompt", "batch (prompts)", "model-only frames/s", "vision tower + abstractor",
                    "end to end, whole run (of the ceiling)", "end to end, steady state (of the ceiling)"], out)
    rows = load("score_mplug_frame")["figures"]["rows"]
    pinned, pageable, trace = rows["end to end"], rows["end to end, pageable"], rows["end to end, GPU trace"]
    variants = {k: load(f"score_mplug_{k}")["figures"]["rows"]["end to end"] for k in ("switch", "workers6")}
    syncs = rows["host syncs"]["syncs"]
    notes.append(
        f"The same run: frames uploaded from pageable memory by the thread that feeds the GPU (as before this session) "
        f"{pageable['frames_s']:.1f} whole run, {pageable['steady_frames_s']:.1f} steady; page-locked in the decode "
        f"workers (now the default on a GPU) {pinned['frames_s']:.1f} and {pinned['steady_frames_s']:.1f}. A CUDA "
        f"trace: the GPU busy {100 * trace['gpu_busy']:.0f}% of {trace['wall_s']:.1f} s, {trace['idle_in_gaps_over_5ms_s']:.2f} s "
        f"of its idle in gaps over 5 ms. Host syncs of one batch, by source line: preprocessing {syncs['preprocess']}, "
        f"forward {syncs['forward']}. Separate runs: Python's thread switch interval at 0.2 ms instead of 5 ms "
        f"{variants['switch']['frames_s']:.1f} whole run, {variants['switch']['steady_frames_s']:.1f} steady; 6 decode "
        f"threads instead of 14 {variants['workers6']['frames_s']:.1f} and {variants['workers6']['steady_frames_s']:.1f} "
        f"({provenance(load('score_mplug_workers6'))})")
    llava = load("score_throughput")["figures"]["rows"]["model only"]["frames_s"]
    before = []
    for name in ("score_mplug_frame_h200", "score_mplug_clip_h200"):
        rec = load(name)
        r, mode = rec["figures"]["rows"], rec["figures"]["setup"]["mode"]
        before.append(f"{mode} mode {r['model only']['frames_s']:.1f} model only ({r['model only']['frames_s'] / llava:.1f}x "
                      f"LLaVA-1.5-7B's {llava:.1f} on that card), {r['end to end']['frames_s']:.1f} end to end "
                      f"({provenance(rec)})")
    notes.append("Earlier, on an H200 with 96 videos (whole-run rate only): " + "; ".join(before))
    return table_ + "\n\n" + "\n\n".join(notes)


def graded_calibration() -> str:
    out = []
    for name in ("graded_calibration", "graded_calibration_local", "graded_calibration_224x128",
                 "graded_calibration_448x256"):
        rec = load(name)
        fig = rec["figures"]
        rows = [[r["kind"]] + [f"{lv['param']:g} ({lv['ssim']:.3f}{'' if lv['reached'] else ', not reached'})"
                               for lv in r["levels"]] for r in fig["kinds"]]
        out.append(f"**{fig['variant']}** (targets {', '.join(f'{t:g}' for t in fig['targets'])}; "
                   f"{fig['sources']} sources at {fig['size']}): " + provenance(rec) + "\n\n"
                   + table(["kind", "strength 0.25", "0.5", "0.75", "1.0"], rows))
    return "\n\n".join(out)


def serve_load() -> str:
    out, notes = [], []
    for name in ("serve_load", "serve_load_7b"):
        rec = load(name)
        f = rec["figures"]
        where = f"{rec['machine']['gpu']}, 7B shape" if "gpu" in rec["machine"] else "CPU (2 cores), tiny model"
        out.append([where, f["clients"], f"{f['seconds']:.0f} s", f["requests"], f"{f['requests_s']:.1f}",
                    f"{f['p50_ms']:.0f} ms", f"{f['p99_ms']:.0f} ms", f["lost"], f["wrong_answers"],
                    f"{f['service_frames_s']:.1f}", f"{f['cli_frames_s']:.1f}",
                    f"{f['videos_scored_by_the_model'] / max(1, f['batches']):.1f}"])
        notes.append(provenance(rec))
    return (table(["machine", "clients", "for", "requests", "requests/s", "p50", "p99", "lost", "to the wrong request",
                   "model frames/s under load", "the CLI's frames/s", "requests per model batch"], out)
            + "\n\n" + "\n\n".join(notes))


def compile_agreement() -> str:
    out, notes = [], []
    for name in ("compile_agreement", "compile_agreement_emulate", "compile_agreement_cuda",
                 "compile_agreement_cuda_emulate", "fp8_agreement", "compile_agreement_regional",
                 "compile_agreement_regional_cuda", "fp8_agreement_demo_row"):
        rec = load(name)
        f = rec["figures"]
        against = {"compile": "compiled", "fp8": "fp8 (eager)", "fp8+compile": "fp8, compiled"}[f.get("against", "compile")]
        if f.get("fp8_scaling"):
            against += f", scaled per {f['fp8_scaling']}"
        if name.startswith("compile_agreement_regional"):
            against = "compiled layer by layer, rounding as eager (now the default)"
        elif against == "compiled":
            against += ", whole model, rounding as eager" if "emulate" in name else ", fp32 intermediates (before)"
        mean = f"{f['mean_score_diff']:.4f}" if "mean_score_diff" in f else "-"
        out.append([f"{against} vs eager {f['dtype']}", f["device"], f["videos"], f"{f['max_score_diff']:.4f}", mean,
                    f"{f['score_sd']:.4f}"])
        notes.append(provenance(rec, name))
    return (table(["scoring", "device", "videos", "largest score difference", "mean difference",
                   "the scores' own sd"], out) + "\n\n" + "\n\n".join(notes))


def score_compiled_emulate() -> str:
    rec = load("score_compiled_emulate")
    rows = rec["figures"]["rows"]
    eager = rows["end to end"]
    out = [[name, f"{r['frames_s']:.1f}", f"{r['frames_s'] / eager['frames_s']:.2f}x", f"{r['warmup_s']:.0f} s",
            score_diff(r)] for name, r in rows.items()]
    return (provenance(rec) + "\n\n"
            + table(["row", "frames/s", "vs eager", "warm-up", "score difference vs eager, largest / mean (1-5)"], out))


def score_families() -> str:
    """Model-only and end-to-end rows of the other families' published shapes."""
    out, notes = [], []
    for label, e2e_name, ceiling_name in (
            ("Qwen2-VL-7B, `fps:1` frames one per prompt", "score_qwen2_vl", "score_qwen2_vl_ceiling"),
            ("Qwen3.5-0.8B (Q-ReAlign Mini preset)", "score_qwen3_5_0.8b", None),
            ("Qwen3.5-9B (Q-ReAlign Pro preset)", "score_qwen3_5_9b", None)):
        rec = load(e2e_name)
        rows = dict(rec["figures"]["rows"])
        if ceiling_name:
            rows.update(load(ceiling_name)["figures"]["rows"])
            notes.append(provenance(load(ceiling_name)))
        ceiling = rows["model only"]
        tokens = next(r["tokens_per_prompt"] for r in rows.values() if "tokens_per_prompt" in r)
        for name, r in rows.items():
            diff = score_diff(r)
            warm = f"{r['warmup_s']:.0f} s" if "warmup_s" in r else "-"
            extra = f" (batch {r['batch']} prompts)" if name == "model only" else ""
            out.append([label, tokens, name + extra, f"{r['frames_s']:.1f}",
                        f"{100 * r['frames_s'] / ceiling['frames_s']:.0f}%", diff, warm])
        notes.append(provenance(rec))
    torch_path = load("score_qwen3_5_0.8b_torch")
    r = torch_path["figures"]["rows"]["model only"]
    out.append(["Qwen3.5-0.8B (Q-ReAlign Mini preset)", r["tokens_per_prompt"],
                f"model only, without flash-linear-attention (batch {r['batch']} prompts)", f"{r['frames_s']:.1f}",
                f"{100 * r['frames_s'] / load('score_qwen3_5_0.8b')['figures']['rows']['model only']['frames_s']:.0f}%",
                "-", "-"])
    notes.append(provenance(torch_path))
    prof = load("score_qwen3_5_0.8b_profile")
    pr = prof["figures"]["rows"]["end to end, profiled"]
    split = ", ".join(f"{k} {100 * v:.0f}%" for k, v in pr["split"].items())
    alone = ", ".join(f"{k} {v:.0f}" for k, v in pr["alone_frames_s"].items())
    notes.append(f"Where Qwen3.5-0.8B's end-to-end time goes (main thread, profiled run at {pr['frames_s']:.1f} "
                 f"frames/s): {split}; each stage alone, frames/s: {alone} (decoder: {', '.join(pr['decoder'])}). "
                 + provenance(prof))
    return (table(["model", "tokens per prompt", "row", "frames/s", "of its model-only row",
                   "score difference vs eager bf16, largest / mean (1-5)", "warm-up"], out)
            + "\n\n" + "\n\n".join(notes))


def score_fp8() -> str:
    rec = load("score_fp8")
    fig = rec["figures"]
    rows, ceiling = fig["rows"], fig["rows"]["model only"]["frames_s"]
    eager = rows["end to end"]["frames_s"]
    out = []
    for name, r in rows.items():
        warm = f"{r['warmup_s']:.0f} s" if "warmup_s" in r else "-"
        mem = f"{r['mem_gib']:.1f}" if "mem_gib" in r else "-"
        out.append([name, f"{r['frames_s']:.1f}", f"{100 * r['frames_s'] / ceiling:.0f}%",
                    f"{r['frames_s'] / eager:.2f}x", score_diff(r), warm, mem])
    setup = fig["setup"]
    return (provenance(rec) + "\n\n"
            + f"{setup['videos']} real H.264 1280x720 10 s videos, `fps:1` keyframes, {setup['tokens_per_prompt']} "
              f"tokens per prompt, batch {setup['batch_size']}, {setup['workers']} decoding threads, decoded with "
              f"PyAV (decord was not carried this time).\n\n"
            + table(["row", "frames/s", "of the eager bf16 model-only ceiling", "vs eager bf16 end to end",
                     "score difference vs eager bf16, largest / mean (1-5)", "warm-up", "GPU GiB"], out))


def demo_graded_attempt(prefix: str = "demo_graded_attempt", splits: dict | None = None) -> str:
    """Graded checks as a table: `splits` maps a row's label to its result file (default: PREFIX_g224/_g448)."""
    splits = splits or {"224x128": f"{prefix}_g224", "448x256": f"{prefix}_g448"}
    out, notes = [], []
    for label, name in splits.items():
        rec = load(name)
        f = rec["figures"]
        kinds = ", ".join(f"{k} {v['srcc']:.2f}" for k, v in sorted(f["kinds"].items()))
        out.append([label, f["n"], f"{f['srcc']:.3f}", f"{f['plcc']:.3f}",
                    f"{100 * f['pristine_first']:.1f}% of {f['pairs']}", kinds])
        notes.append(provenance(rec))
    return (table(["held-out test split", "videos", "SRCC", "PLCC", "pristine first", "SRCC per kind"], out)
            + "\n\n" + "\n\n".join(notes))


def demo_compare(checks: dict, after: str = "session 15", before: str = "session 12") -> str:
    """Two models' graded checks side by side: `checks` maps a row's label to (before, after) result files."""
    out, notes = [], []
    for label, names in checks.items():
        recs = [load(name) for name in names]
        row = [label, recs[0]["figures"]["n"]]
        for name, rec in zip(names, recs):
            f = rec["figures"]
            row += [f"{f['srcc']:.3f}", f"{100 * f['pristine_first']:.1f}%"]
            notes.append(provenance(rec, name))
        out.append(row)
    return (table(["check", "videos", f"{before}: SRCC", f"{before}: pristine first", f"{after}: SRCC",
                   f"{after}: pristine first"], out) + "\n\n" + "\n\n".join(notes))


def unseen_checks(prefix: str, before: str = "demo_s15_shipped") -> dict:
    """The unseen-set rows of a demo_compare table: BEFORE's results (default: session 12's model, scored in
    session 15) against PREFIX's."""
    rows = {"unseen 320x180 (seed 7)": "320", "the same, re-encoded with HEVC": "hevc",
            "320x180, labels: each clip's SSIM": "320_ssim", "320x180, labels: each clip's PSNR": "320_psnr"}
    return {label: (f"{before}_unseen_{key}", f"{prefix}_unseen_{key}") for label, key in rows.items()}


DEMO_S15 = {"224x128 test split (GPU)": ("demo_s15_shipped_g224", "demo_s15_g224"),
            "224x128 test split, dead-leaves sources only": ("demo_s15_shipped_g224_dl", "demo_s15_g224_dl"),
            "448x256 test split (CPU)": ("demo_s15_shipped_g448", "demo_s15_g448"), **unseen_checks("demo_s15")}

DEMO_S15CPU = {"224x128 test split": ("demo_s15cpu_shipped_g224", "demo_s15cpu_g224"),
               "224x128 test split, dead-leaves sources only": ("demo_s15cpu_shipped_g224_dl", "demo_s15cpu_g224_dl"),
               "448x256 test split": ("demo_s15_shipped_g448", "demo_s15cpu_g448"), **unseen_checks("demo_s15cpu")}

DEMO_S16 = {"224x128 test split (CPU)": ("demo_s16_shipped_g224", "demo_s16_g224"),
            "224x128 test split, dead-leaves sources only": ("demo_s16_shipped_g224_dl", "demo_s16_g224_dl"),
            "448x256 test split (GPU)": ("demo_s16_shipped_g448", "demo_s16_g448"),
            **unseen_checks("demo_s16", before="demo_s16_shipped")}

DEMO_S16CPU = {"224x128 test split": ("demo_s16_g224", "demo_s16cpu_g224"),
               "224x128 test split, dead-leaves sources only": ("demo_s16_g224_dl", "demo_s16cpu_g224_dl"),
               "448x256 test split (made again on this CPU)": ("demo_s16_g448_local", "demo_s16cpu_g448"),
               **unseen_checks("demo_s16cpu", before="demo_s16")}

DEMO_S18 = {"224x128 test split (CPU)": ("demo_s16_g224", "demo_s18_g224"),
            "224x128 test split, dead-leaves sources only": ("demo_s16_g224_dl", "demo_s18_g224_dl"),
            "448x256 test split (GPU)": ("demo_s18_shipped_g448", "demo_s18_g448"),
            **unseen_checks("demo_s18", before="demo_s16")}

def error_split(rows: dict) -> str:
    """graded_check.py --vs-ssim's split of models' scores (`rows`: a row's label -> result file), then each
    kind-strength cell's mean SSIM on those clips (the same for every model: the first file's) beside the
    calibration's target at that strength."""
    recs = {label: load(name) for label, name in rows.items()}
    out = [[label, f"{r['figures']['srcc']:.3f}", f"{r['figures']['cell_srcc']:.3f}",
            *(f"{100 * r['figures']['shares'][k]:.0f}%" for k in ("cells", "sources", "clips")),
            f"{r['figures']['within_cell_ssim_srcc']:.2f}"] for label, r in recs.items()]
    split = table(["model", "SRCC", "SRCC of the cell means alone", "variance: cells", "sources", "each clip's own",
                   "inside a cell: score vs the clip's SSIM (SRCC)"], out)
    cells = next(iter(recs.values()))["figures"]["cell_ssim"]
    kinds = sorted({key.rsplit("_", 1)[0] for key in cells})
    strengths = sorted({key.rsplit("_", 1)[1] for key in cells})
    from lmm_vqa.synth import GRADED_SSIM

    targets = dict(zip(strengths, GRADED_SSIM))
    ssim = table(["kind", *(f"strength {int(t) / 100:g} (target {targets[t]})" for t in strengths)],
                 [[k, *(f"{cells[f'{k}_{t}']:.3f}" for t in strengths)] for k in kinds])
    return (split + "\n\nEach cell's mean SSIM on these clips (luma, 4 keyframes, against the source's pristine "
            "clip):\n\n" + ssim + "\n\n" + "\n\n".join(provenance(r, name) for r, name in
                                                              zip(recs.values(), rows.values())))


DEMO_S20_SPLIT = {"session 18's model": "demo_s18_g224_split", "session 20's model": "demo_s20_g224_split"}

DEMO_S20_FIT = {"session 18's model, held-out sources (test split, GPU)": "demo_s20_shipped_g448",
                "session 18's model, its training sources (CPU)": "demo_s18_g448train",
                "session 20's model, held-out sources (test split, GPU)": "demo_s20_g448",
                "session 20's model, its training sources (CPU)": "demo_s20_g448train"}

DEMO_S20 = {"224x128 test split (CPU)": ("demo_s18_g224", "demo_s20_g224"),
            "224x128 test split, dead-leaves sources only": ("demo_s18_g224_dl", "demo_s20_g224_dl"),
            "448x256 test split (GPU)": ("demo_s20_shipped_g448", "demo_s20_g448"),
            **unseen_checks("demo_s20", before="demo_s18")}

DEMO_S21 = {"224x128 test split (CPU)": ("demo_s20_g224", "demo_s21_g224"),
            "224x128 test split, dead-leaves sources only": ("demo_s20_g224_dl", "demo_s21_g224_dl"),
            "448x256 test split (GPU)": ("demo_s21_shipped_g448", "demo_s21_g448"),
            **unseen_checks("demo_s21", before="demo_s20")}

DEMO_S21_CALLS = {"session 20's model (shipped before)": "demo_s21_shipped_g448",
                  "after call 1": "demo_s21_call1_g448", "after call 2": "demo_s21_call2_g448",
                  "after call 3 (best validation: shipped now)": "demo_s21_g448",
                  "after call 4 (validated lower: not shipped)": "demo_s21_call4_g448"}

DEMO_S21_FIT = {"session 20's model, held-out sources (test split, GPU)": "demo_s21_shipped_g448",
                "session 20's model, its training sources (CPU)": "demo_s20_g448train",
                "session 21's model, held-out sources (test split, GPU)": "demo_s21_g448",
                "session 21's model, its training sources (CPU)": "demo_s21_g448train"}

DEMO_S21_CROPS = {"224x128 test split": ("demo_s21_g224", "demo_s21_crops3_g224"),
                  "224x128 test split, dead-leaves sources only": ("demo_s21_g224_dl", "demo_s21_crops3_g224_dl"),
                  "448x256 test split": ("demo_s21_g448cpu", "demo_s21_crops3_g448cpu"),
                  **unseen_checks("demo_s21_crops3", before="demo_s21")}

DEMO_S21_SPLIT = {"session 20's model": "demo_s20_g224_split", "session 21's model": "demo_s21_g224_split"}

DEMO_S22_CALLS = {"session 21's model (shipped)": "demo_s22_shipped_g448",
                  "after call 1 (6,378 training clips)": "demo_s22_call1_g448",
                  "after call 2 (13,902)": "demo_s22_call2_g448",
                  "after call 3 (25,188; best training validation)": "demo_s22_call3_g448"}

DEMO_S22_VAL = {"448x256 validation file (g448/val)": ("demo_s22_val_shipped_g448", "demo_s22_val_call3_g448"),
                "224x128 validation file (chunk 7's, dead-leaves sources)": ("demo_s22_val_shipped_n224",
                                                                             "demo_s22_val_call3_n224")}

DEMO_S22_VAL_GPU = {"session 21's model, 448x256 validation file": "demo_s22_val_shipped_g448_gpu",
                    "after call 1, 448x256 validation file": "demo_s22_val_call1_g448_gpu",
                    "after call 2, 448x256 validation file": "demo_s22_val_call2_g448_gpu",
                    "after call 1, 224x128 validation file": "demo_s22_val_call1_n224_gpu",
                    "after call 3, 224x128 validation file": "demo_s22_val_call3_n224_gpu"}

DEMO_S22_TEST = {"224x128 test split": ("demo_s21_crops3_g224", "demo_s22_call3_g224"),
                 "224x128 test split, dead-leaves sources only": ("demo_s21_crops3_g224_dl", "demo_s22_call3_g224_dl"),
                 "448x256 test split (scored in session 23)": ("demo_s21_crops3_g448cpu", "demo_s22_call3_g448cpu"),
                 **unseen_checks("demo_s22_call3", before="demo_s21_crops3")}

DEMO_S22_CROPS = {"224x128 test split": ("demo_s22_call3_g224_c1", "demo_s22_call3_g224"),
                  "448x256 test split": ("demo_s22_call3_g448cpu_c1", "demo_s22_call3_g448cpu")}

DEMO_S22_FRESH = {"fresh 224x128 test split (seed 100)": ("demo_s22_fresh_shipped", "demo_s22_fresh_call3"),
                  "the same, dead-leaves sources only": ("demo_s22_fresh_shipped_dl", "demo_s22_fresh_call3_dl")}


def graded_reference(rows: dict) -> str:
    """Models on one graded test split, overall and per kind: `rows` maps a row's label to its result file."""
    recs = {label: load(name) for label, name in rows.items()}
    kinds = sorted(next(iter(recs.values()))["figures"]["kinds"])
    out = [[label, r["figures"]["n"], f"{r['figures']['srcc']:.3f}", f"{100 * r['figures']['pristine_first']:.1f}%",
            f"{r['figures']['within_source_srcc']:.3f}", f"{r['figures']['pristine_sd'] / r['figures']['score_sd']:.2f}",
            *(f"{r['figures']['kinds'][k]['srcc']:.2f}" for k in kinds)] for label, r in recs.items()]
    return (table(["model", "videos", "SRCC", "pristine first", "SRCC within a source",
                   "pristine clips' spread / all scores' spread", *kinds], out) + "\n\n"
            + "\n\n".join(provenance(r, name) for r, name in zip(recs.values(), rows.values())))


GRADED_REFERENCE = {"classical: minus the blur measure (nothing fitted)": "classical_g224_blur",
                    "classical: 7 hand features + ridge, fitted on the training split": "classical_g224_ridge",
                    "the bundled demo model (session 16)": "demo_s16_g224",
                    "the same model on 48 of its own training sources": "demo_s16_train48"}


def compile_probe() -> str:
    rec = load("compile_probe")
    names = {"eager": "eager", "regional_dynamic": "each decoder layer, dynamic shapes (now the default)",
             "regional_static": "each decoder layer, static shapes", "whole_static": "whole language model, static",
             "whole_dynamic": "whole language model, dynamic (before)"}
    rows = [[names[r["variant"]], f"{r['frames_s']:.1f}", f"{r['warmup_s']:.1f} s", r["graphs"],
             f"{r['max_logprob_diff']:.4f}"] for r in rec["figures"]["rows"]]
    return (provenance(rec) + "\n\n" + table(["compiled", "model-only frames/s", "warm-up (first batch)", "graphs",
                                               "largest log-probability difference vs eager"], rows))


def score_regional(name: str = "score_regional") -> str:
    rec = load(name)
    rows = rec["figures"]["rows"]
    eager = rows.get("end to end")
    out = []
    for row, r in rows.items():
        steady = f"{r['steady_frames_s']:.1f}" if "steady_frames_s" in r else "-"
        warm = f"{r['warmup_s']:.1f} s" if "warmup_s" in r else "-"
        ratio = f"{r['frames_s'] / eager['frames_s']:.2f}x" if eager and row.startswith("end to end") else "-"
        out.append([row, f"{r['frames_s']:.1f}", steady, ratio, warm, score_diff(r)])
    return (provenance(rec, name) + "\n\n"
            + table(["row", "frames/s, whole run", "frames/s, steady", "vs eager", "warm-up",
                     "score difference vs eager bf16, largest / mean (1-5)"], out))


def hive_ablation(name: str) -> str:
    rec = load(name)
    f = rec["figures"]

    def ms(stat):
        return f"{stat['mean']:.3f} ± {stat['sd']:.3f}"

    rows = []
    for r in f["rows"]:
        shares = [x["fusion_share"] for x in r["runs"] if x.get("fusion_share") is not None]
        rows.append([r["row"], ms(r["main"]), ms(r["srcc"]), ms(r["plcc"]), f"{r['distinct']['mean']:.0f}",
                     f"{sum(shares) / len(shares):.2f}" if shares else "-"])
    references = {"base model, not fine-tuned": f["untrained"]} if "untrained" in f else {}
    references.update({f"classical: {method}": r for method, r in f["classical"].items()})
    for label, r in references.items():
        rows.append([label, f"{r['main']:.3f}", f"{r['srcc']:.3f}", f"{r['plcc']:.3f}", "-", "-"])
    return (provenance(rec, name) + f"\n\nSeeds {f['seeds']}, {f['epochs']} epochs, {f['sources']} sources; mean ± sd over "
            "the seeds.\n\n" + table(["model", "NTIRE 2023 main", "SRCC", "PLCC", "distinct scores",
                                       "fusion share (dual encoder)"], rows))


def readme_figures() -> str:
    speed, cost = load("score_llava_s16"), load("train_cost")["figures"]
    rows = speed["figures"]["rows"]
    scaling = load("score_scaling")["figures"]["rows"]["scaling"]
    split = [r for r in load("train_cost_split")["figures"] if "samples_per_s" in r]
    fast = next(r for r in split if "no checkpointing" in r["variant"])
    slow = next(r for r in split if r["variant"] == "LoRA bf16")
    qlora = next(r for r in cost if r["variant"].startswith("QLoRA"))
    return (f"Measured with a LLaVA-1.5-7B-shaped model on one {speed['machine']['gpu']}: scoring 1280x720 videos end "
            f"to end at {rows['end to end, compiled']['steady_frames_s']:.1f} frames/s at steady state with the "
            f"language model compiled (the default on a GPU; {rows['end to end']['steady_frames_s']:.1f} eager) and "
            f"{rows['end to end, fp8, compiled']['steady_frames_s']:.1f} with `--dtype fp8`; fine-tuning with LoRA "
            f"(bf16, batch {fast['batch']}) at {fast['samples_per_s']:.1f} samples/s as the configs ship (gradient "
            f"checkpointing off, {fast['peak_gib']:.1f} GiB; with it {slow['samples_per_s']:.1f} in {slow['peak_gib']:.1f} "
            f"GiB, the same run), QLoRA at {qlora['samples_per_s']:.1f} samples/s in {qlora['peak_gib']:.1f} GiB; and on "
            f"{max(scaling, key=int)} of them, `--devices` scored {scaling[max(scaling, key=int)]['frames_s'] / scaling['1']['frames_s']:.2f}x "
            f"one GPU at steady state (`docs/benchmarks.md`).")


def readme_serve() -> str:
    rec = load("serve_load_7b")
    f = rec["figures"]
    return (f"On one {rec['machine']['gpu']} with the LLaVA-1.5-7B shape, {f['clients']} clients got "
            f"{f['requests_s']:.1f} requests/s (p50 {f['p50_ms'] / 1000:.1f} s), {f['lost']} lost, and the model kept "
            f"{100 * f['service_frames_s'] / f['cli_frames_s']:.0f}% of the CLI's frames/s.")


RENDERERS = {"dtype_agreement": dtype_agreement, "gpu_tests": gpu_tests, "train_cost": train_cost,
             "score_throughput": score_throughput, "score_scaling": score_scaling, "score_compiled": score_compiled, "score_mplug": score_mplug,
             "graded_calibration": graded_calibration,
             "serve_load": serve_load,
             "compile_agreement": compile_agreement, "score_fp8": score_fp8, "demo_graded_attempt": demo_graded_attempt,
             "demo_graded_fastvlm": lambda: demo_graded_attempt("demo_graded_fastvlm"),
             "demo_graded_fastvlm448": lambda: demo_graded_attempt("demo_graded_fastvlm448"),
             "demo_graded_s14": lambda: demo_graded_attempt("demo_graded_s14"),
             "demo_s15": lambda: demo_compare(DEMO_S15, "session 15, 224 only"),
             "demo_s15cpu": lambda: demo_compare(DEMO_S15CPU, "session 15, shipped"),
             "demo_s16": lambda: demo_compare(DEMO_S16, "session 16, shipped now", "session 15"),
             "graded_reference": lambda: graded_reference(GRADED_REFERENCE),
             "demo_s20_fit": lambda: graded_reference(DEMO_S20_FIT),
             "demo_s20_split": lambda: error_split(DEMO_S20_SPLIT),
             "demo_s16cpu": lambda: demo_compare(DEMO_S16CPU, "60 more steps on this CPU", "session 16, shipped"),
             "demo_s18": lambda: demo_compare(DEMO_S18, "session 18, shipped now", "session 16"),
             "demo_s20": lambda: demo_compare(DEMO_S20, "session 20", "session 18"),
             "demo_s21": lambda: demo_compare(DEMO_S21, "session 21, shipped now", "session 20"),
             "demo_s21_calls": lambda: graded_reference(DEMO_S21_CALLS),
             "demo_s21_fit": lambda: graded_reference(DEMO_S21_FIT),
             "demo_s21_split": lambda: error_split(DEMO_S21_SPLIT),
             "demo_s21_crops": lambda: demo_compare(DEMO_S21_CROPS, "3 squares (crops: 3)", "the centre square"),
             "demo_s22_calls": lambda: graded_reference(DEMO_S22_CALLS),
             "demo_s22_val": lambda: demo_compare(DEMO_S22_VAL, "session 22, call 3 (the candidate)",
                                                  "session 21's model (shipped)"),
             "demo_s22_val_gpu": lambda: graded_reference(DEMO_S22_VAL_GPU),
             "demo_s22_test": lambda: demo_compare(DEMO_S22_TEST, "session 22, call 3 (the candidate)",
                                                   "session 21's model (shipped)"),
             "demo_s22_crops": lambda: demo_compare(DEMO_S22_CROPS, "3 squares (crops: 3)", "the centre square"),
             "demo_s22_fresh": lambda: demo_compare(DEMO_S22_FRESH, "session 22, call 3 (the candidate)",
                                                    "session 21's model (shipped until then)"),
             "demo_fastvlm_unseen": lambda: demo_graded_attempt(splits={
                 "320x180, dead-leaves content never trained on": "demo_fastvlm_unseen_320",
                 "the same, re-encoded with HEVC": "demo_fastvlm_unseen_hevc",
                 "320x180, labels: each clip's own SSIM against its pristine clip": "demo_fastvlm_unseen_320_ssim",
                 "320x180, labels: each clip's own PSNR against its pristine clip": "demo_fastvlm_unseen_320_psnr"}),
             "demo_fastvlm448_unseen": lambda: demo_graded_attempt(splits={
                 "320x180, dead-leaves content never trained on": "demo_fastvlm448_unseen_320",
                 "the same, re-encoded with HEVC": "demo_fastvlm448_unseen_hevc",
                 "320x180, labels: each clip's own SSIM against its pristine clip": "demo_fastvlm448_unseen_320_ssim",
                 "320x180, labels: each clip's own PSNR against its pristine clip": "demo_fastvlm448_unseen_320_psnr"}),
             "train_cost_split": lambda: train_cost("train_cost_split"),
             "readme_figures": readme_figures, "readme_serve": readme_serve,
             "score_compiled_emulate": score_compiled_emulate, "score_families": score_families,
             "gpu_tests_fp8": lambda: gpu_tests("gpu_tests_fp8"), "compile_probe": compile_probe,
             "score_regional": score_regional,
             "score_llava_120": lambda: score_regional("score_llava_120"),
             "score_fp8_b64": lambda: score_regional("score_fp8_b64"),
             "score_mplug_compiled": lambda: score_regional("score_mplug_compiled"),
             **{name: (lambda name=name: score_regional(name)) for name in (
                 "score_llava_s16", "score_fp8_b64_s16", "score_llava_b64_s16", "score_qwen2_vl_fp8_s16")},
             **{name: (lambda name=name: hive_ablation(name)) for name in (
                 "hive_ablation_local", "hive_ablation_clustered", "hive_ablation_clustered_hard",
                 "hive_ablation_clustered_hard_words", "hive_ablation_narrow_hard", "hive_ablation_narrow_hard_48",
                 "hive_ablation_narrow_soft")}}


def render(text: str) -> str:
    def one(m):
        name = m.group(2)
        if name not in RENDERERS:
            raise ValueError(f"no renderer for block {name!r}; known: {sorted(RENDERERS)}")
        return m.group(1) + RENDERERS[name]().rstrip() + "\n" + m.group(4)

    return BLOCK.sub(one, text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if a rendered block is out of date")
    args = p.parse_args(argv)
    stale = []
    for doc in DOCS:
        text = doc.read_text()
        new = render(text)
        if new != text:
            stale.append(doc)
            if not args.check:
                doc.write_text(new)
    if args.check and stale:
        print(f"out of date with eval/results: {[str(d.relative_to(ROOT)) for d in stale]}; run "
              "python eval/render_benchmarks.py", file=sys.stderr)
        return 1
    print("checked" if args.check else f"rendered {[str(d.relative_to(ROOT)) for d in DOCS]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
