"""Scoring throughput on a GPU: a LLaVA-1.5-7B-shaped model (random weights, bf16, SDPA) scoring real
encoded 1280x720, 10 s videos at 1 keyframe per second, end to end through `lmm-vqa score`'s code path.

    python eval/bench_score.py --work /tmp/bench --videos 24 --batch-size 32
    python eval/bench_score.py --family mplug_owl2 --mode clip --batch-size 4   # Q-Align's 7B, video mode

`--family mplug_owl2`: the mPLUG-Owl2 7B shape of Q-Align and OneAlign (ViT-L/14-448, abstractor, LLaMA-2-7B;
65 visual tokens per frame instead of LLaVA-1.5's 576). `--family qwen2_vl`: Qwen2-VL-7B (native resolution, about
1200 visual tokens per 1280x720 frame). `--mode clip`: a video's keyframes in one prompt,
`--batch-size` then counting prompts (videos), not frames.

Rows: end to end (decode in threads, preprocessing on the GPU on a side stream, frames batched across
videos, one batch in flight while the next is prepared); the same with each batch waited for at once;
the model-only ceiling (the same model on pre-processed tensors already on the GPU, best batch
size); the naive baseline (one `generate(max_new_tokens=1)` per frame, batch 1); HIVE (global +
4 local views, coarse and fine adapters); and, with several GPUs, `--devices all`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

import record


def make_video(args):
    path, seed = args
    from lmm_vqa.synth import render_clip, source_image
    from lmm_vqa.testing import write_video

    rng = np.random.default_rng(seed)
    clip = render_clip(source_image(seed % 16, rng), (1280, 720), 250, rng)
    write_video(path, clip, fps=25, crf=23, preset="veryfast", gop=25)
    return path


SCORER = {}  # scoring settings of every row (--mode, --preset)


def prepare(work: Path, num_videos: int, family: str = "llava") -> tuple[Path, list[str]]:
    from lmm_vqa import testing

    name, build, shapes = {"llava": ("llava_7b", testing.build_llava_checkpoint, testing.LLAVA_7B_SHAPES),
                           "mplug_owl2": ("mplug_owl2_7b", testing.build_mplug_owl2_checkpoint,
                                          testing.MPLUG_OWL2_7B_SHAPES),
                           "qwen2_vl": ("qwen2_vl_7b", testing.build_qwen2_vl_checkpoint, testing.QWEN2_VL_7B_SHAPES),
                           "qwen3_5_0.8b": ("qwen3_5_0.8b", testing.build_qwen3_5_checkpoint,
                                            testing.QWEN3_5_0_8B_SHAPES),
                           "qwen3_5_9b": ("qwen3_5_9b", testing.build_qwen3_5_checkpoint,
                                          testing.QWEN3_5_9B_SHAPES)}[family]
    model = work / f"{name}_random"
    if not (model / "config.json").is_file():
        build(model, **shapes, dtype="bf16", device="cuda")
    vids = work / "videos"
    vids.mkdir(parents=True, exist_ok=True)
    paths = [str(vids / f"v{i:03d}.mp4") for i in range(num_videos)]
    todo = [(p, i) for i, p in enumerate(paths) if not Path(p).is_file()]
    with ProcessPoolExecutor(16) as pool:
        list(pool.map(make_video, todo))
    return model, paths


def build_hive(model: Path, work: Path) -> Path:
    """Two LoRA adapters (5 and 9 levels) on the 7B base with the dual encoder (global + 4 local views,
    LoRA on the language model and both vision encoders), as `lmm-vqa hive` writes them."""
    from lmm_vqa.testing import build_hive_folder

    hive = work / "hive_dual"
    if not (hive / "hive.json").is_file():
        build_hive_folder(model, hive, dual_encoder=True, dtype="bf16", device="cuda")
    return hive


def warm_up(scorer, paths, batch_size, workers) -> None:
    """Score enough videos for two full batches (10 keyframes a video), so that the timed run does not pay
    first-time costs of the batch's shapes (cuDNN attention builds a plan per new shape: ~65 ms each on an
    H200, seen in the GPU trace); a real run pays them once."""
    per_batch = batch_size if scorer.config.mode == "clip" else -(-batch_size // 10)
    list(scorer.score_paths(paths[:max(2, 2 * per_batch)], batch_size=batch_size, num_workers=workers))


def end_to_end(model, paths, batch_size, workers, device="cuda", in_flight=True, compile="off", dtype=None,
               pin=True, fp8_scaling=None) -> dict:
    """`lmm-vqa score`'s code path. in_flight=False: each batch is waited for as soon as it is
    launched (no next batch prepared meanwhile), to show what keeping one batch in flight buys.
    compile="on": the language model under torch.compile; the warm-up then includes it. dtype="fp8": the
    language model's linear layers in float8 (lmm_vqa/fp8.py), scaled per `fp8_scaling`. pin=False: frames
    uploaded from pageable memory, by the thread that feeds the GPU, as before page-locked frames.
    `steady_frames_s`: the rate from the first finished row to the last, without the start (the first
    videos decoding while the GPU waits), which a large video set does not see."""
    from lmm_vqa.checkpoints import load_scorer

    scorer = load_scorer(model, device=device, compile=compile, dtype=dtype, fp8_scaling=fp8_scaling, **SCORER)
    scorer.pin_frames = pin
    if not in_flight:
        start_now = scorer.start_level_probs

        def start_and_wait(texts, images):
            probs = start_now(texts, images)()
            return lambda: probs

        scorer.start_level_probs = start_and_wait
    start = time.perf_counter()
    warm_up(scorer, paths, batch_size, workers)
    torch.cuda.synchronize()
    warmup = time.perf_counter() - start
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    rows, seen = [], []  # seen: (time, frames) as each row comes out
    for r in scorer.score_paths(paths, batch_size=batch_size, num_workers=workers):
        rows.append(r)
        seen.append((time.perf_counter(), r.get("num_frames", 0)))
    seconds = time.perf_counter() - start
    frames = sum(r.get("num_frames", 0) for r in rows)
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows if r["status"] != "ok"]
    # rows finished by one batch come out within microseconds; from the end of the first such burst to the last row
    first = next((i for i, (t, _) in enumerate(seen) if t > seen[0][0] + 0.01), len(seen))
    steady = sum(n for _, n in seen[first:]) / (seen[-1][0] - seen[first - 1][0]) if first < len(seen) else float("nan")
    out = {"videos_s": len(rows) / seconds, "frames_s": frames / seconds, "steady_frames_s": steady, "warmup_s": warmup,
           "mem_gib": torch.cuda.max_memory_allocated() / 2 ** 30, "scores": [r["score"] for r in rows]}
    del scorer
    torch.cuda.empty_cache()
    return out


def profile(model, paths, batch_size, workers) -> dict:
    """Where end-to-end time goes: the main thread's time in views, preprocessing (processor and
    upload) and the forward pass, the rest being the wait for decoding and bookkeeping; and each
    stage's own rate when run alone."""
    from concurrent.futures import ThreadPoolExecutor

    from lmm_vqa.checkpoints import load_scorer

    scorer = load_scorer(model, device="cuda", compile="off", **SCORER)
    spent = {"views": 0.0, "preprocess": 0.0, "forward": 0.0}

    def timed(name, fn):
        def run(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            torch.cuda.synchronize()  # charge the GPU work to the stage that launched it
            spent[name] += time.perf_counter() - start
            return out
        return run

    scorer.prompt_images = timed("views", scorer.prompt_images)
    scorer.encode = timed("preprocess", scorer.encode)
    scorer.level_logprobs = timed("forward", scorer.level_logprobs)
    warm_up(scorer, paths, batch_size, workers)
    spent.update(dict.fromkeys(spent, 0.0))
    start = time.perf_counter()
    rows = list(scorer.score_paths(paths, batch_size=batch_size, num_workers=workers))
    total = time.perf_counter() - start
    frames = sum(r["num_frames"] for r in rows)
    split = {k: v / total for k, v in spent.items()}
    split["decode wait + other"] = 1 - sum(split.values())

    with ThreadPoolExecutor(workers) as pool:  # decoding alone, as score_paths runs it
        start = time.perf_counter()
        decoded = list(pool.map(scorer.load, paths))
        decode_fps = sum(len(d.frames) for d in decoded) / (time.perf_counter() - start)
    decoders = sorted({d.decoder for d in decoded})
    frames_list = [f for d in decoded[:4] for f in d.frames][:batch_size]
    images = [scorer.prompt_images([f]) for f in frames_list]
    texts = [scorer.prompt_for(im) for im in images]
    flat = [i for im in images for i in im]
    scorer.encode(texts, flat)
    start = time.perf_counter()
    for _ in range(5):
        scorer.encode(texts, flat)
    preprocess_fps = 5 * len(texts) / (time.perf_counter() - start)
    del scorer
    torch.cuda.empty_cache()
    return {"frames_s": frames / total, "videos_s": len(rows) / total, "split": split,
            "alone_frames_s": {"decode": decode_fps, "preprocess": preprocess_fps}, "decoder": decoders}


def timeline(model, paths, batch_size, workers, device="cuda", cpu=False) -> dict:
    """GPU busy time during end-to-end scoring, from a CUDA kernel and copy trace: the share of the
    wall time with work on the GPU, and how much of the idle time is in gaps over 5 ms. cpu=True also
    traces the host's torch and CUDA-runtime calls and names those under each gap's midpoint."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from lmm_vqa.checkpoints import load_scorer

    scorer = load_scorer(model, device=device, compile="off", **SCORER)
    warm_up(scorer, paths, batch_size, workers)
    activities = [ProfilerActivity.CUDA] + ([ProfilerActivity.CPU] if cpu else [])
    with torch_profile(activities=activities) as prof:
        start = time.perf_counter()
        rows = list(scorer.score_paths(paths, batch_size=batch_size, num_workers=workers))
        torch.cuda.synchronize()
        wall = time.perf_counter() - start
    events = prof.events()
    spans = sorted((e.time_range.start, e.time_range.end) for e in events if e.device_type == DeviceType.CUDA)
    merged = []  # union of the GPU's busy intervals, in microseconds
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    busy_s = sum(b - a for a, b in merged) / 1e6
    gaps = [(b0 - a1) / 1e6 for (_, a1), (b0, _) in zip(merged, merged[1:])]
    frames = sum(r["num_frames"] for r in rows)
    under_gaps = {}  # host call -> seconds of gaps over 5 ms whose midpoint it spans
    if cpu:
        host = [e for e in events if e.device_type == DeviceType.CPU]
        for (_, a1), (b0, _) in zip(merged, merged[1:]):
            if b0 - a1 > 5e3:
                mid = (a1 + b0) / 2
                for name in {e.name for e in host if e.time_range.start <= mid <= e.time_range.end} or {"(none)"}:
                    under_gaps[name] = under_gaps.get(name, 0.0) + (b0 - a1) / 1e6
    del scorer
    torch.cuda.empty_cache()
    return {"frames_s": frames / wall, "videos_s": len(rows) / wall, "gpu_busy": busy_s / wall,
            "host_calls_under_gaps_s": dict(sorted(under_gaps.items(), key=lambda kv: -kv[1])[:12]),
            "idle_in_gaps_over_5ms_s": sum(g for g in gaps if g > 5e-3), "idle_s": wall - busy_s, "wall_s": wall,
            "gaps_over_5ms": sum(g > 5e-3 for g in gaps), "largest_gaps_ms": sorted(round(g * 1e3, 1) for g in gaps)[-8:]}


def scaling(model, paths, batch_size, workers, work) -> dict:
    """1 GPU vs all GPUs through `lmm-vqa score --devices` (one rank per GPU, as torchrun would start them).
    Steady state: the rows written to the ranks' part files, polled, from when every rank has written
    its first row to the last row (model loading excluded); and the wall time with loading."""
    from lmm_vqa.results import read_rows
    from lmm_vqa.sharding import part_path

    out = {}
    for n in sorted({1, torch.cuda.device_count()}):
        csv = work / f"scaling_{n}.csv"
        for f in [csv, *(part_path(csv, r) for r in range(n))]:
            f.unlink(missing_ok=True)
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "lmm_vqa.cli", "score", *paths, "--model", str(model), "--out",
                                 str(csv), "--quiet", "--devices", ",".join(f"cuda:{i}" for i in range(n)),
                                 "--batch-size", str(batch_size), "--workers", str(workers)])
        seen = []  # (time, rows per rank)
        while proc.poll() is None:
            counts = []  # rows each rank has written (one device: no ranks, rows go to the csv itself)
            for f in [part_path(csv, r) for r in range(n)] if n > 1 else [csv]:
                try:
                    counts.append(sum(1 for _ in open(f, "rb")) - (n == 1))
                except FileNotFoundError:
                    counts.append(0)
            seen.append((time.perf_counter(), counts))
            time.sleep(0.1)
        assert proc.returncode == 0, proc.returncode
        rows = read_rows(csv)
        frames_per_video = sum(int(r["num_frames"]) for r in rows) / len(rows)
        t0, c0 = next((t, sum(c)) for t, c in seen if min(c) > 0)
        # the first poll that saw every row (the parts are merged and removed right after the last row)
        t1, c1 = max(((t, sum(c)) for t, c in seen), key=lambda tc: (tc[1], -tc[0]))
        out[n] = {"frames_s": (c1 - c0) * frames_per_video / (t1 - t0), "wall_s": time.perf_counter() - start}
    return out


def decoded_prompts(scorer, paths) -> list[list]:
    """Each prompt's frames from the first 4 videos: one frame a prompt in frame mode, a video's in clip mode."""
    videos = [scorer.load(p).frames for p in paths[:4]]
    return [[f] for v in videos for f in v] if scorer.config.mode == "frame" else [list(v) for v in videos]


def batch_of(scorer, prompts, batch_size) -> tuple[list[str], list, int]:
    """A batch of `batch_size` prompts (repeating `prompts` as needed): their texts, their images in order, and
    how many frames they hold."""
    chosen = (prompts * (batch_size // len(prompts) + 1))[:batch_size]
    images = [scorer.prompt_images(frames) for frames in chosen]
    return [scorer.prompt_for(im) for im in images], [i for im in images for i in im], sum(len(c) for c in chosen)


def host_syncs(model, paths, batch_size) -> dict:
    """Where preprocessing and the forward pass make the host wait for the GPU (torch's sync debug mode), by
    source line: each such wait empties the GPU's queue, which then idles until the host launches again."""
    import warnings

    from lmm_vqa.checkpoints import load_scorer

    scorer = load_scorer(model, device="cuda", compile="off", **SCORER)
    texts, flat, _ = batch_of(scorer, decoded_prompts(scorer, paths), batch_size)
    scorer.level_logprobs(scorer.encode(texts, flat))  # first-time costs out of the way
    torch.cuda.synchronize()
    out = {}
    for stage in ("preprocess", "forward"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                if stage == "preprocess":
                    inputs = scorer.encode(texts, flat)
                else:
                    scorer.level_logprobs(inputs)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        where = {}
        for w in caught:
            key = f"{Path(w.filename).name}:{w.lineno}"
            where[key] = where.get(key, 0) + 1
        out[stage] = where
    del scorer
    torch.cuda.empty_cache()
    return {"frames_s": float("nan"), "syncs": out}


def model_only(model, paths, batch_sizes, dtype=None, compile="off", fp8_scaling=None) -> dict:
    """Pre-decoded, pre-processed tensors on the GPU; forward with last-position logits only. In clip mode
    a prompt holds one video's keyframes, and the batch sizes count prompts. Also the vision tower (with
    the projector or abstractor) alone on the same images: its share of the forward pass."""
    from lmm_vqa.checkpoints import load_scorer

    scorer = load_scorer(model, device="cuda", compile=compile, dtype=dtype, fp8_scaling=fp8_scaling, **SCORER)
    prompts = decoded_prompts(scorer, paths)
    best, vision = {}, {}
    for b in batch_sizes:
        texts, images, frames = batch_of(scorer, prompts, b)
        inputs = scorer.encode(texts, images)
        for _ in range(2):
            scorer.level_logprobs(inputs)
        torch.cuda.synchronize()
        n, start = 10, time.perf_counter()
        for _ in range(n):
            scorer.level_logprobs(inputs)
        torch.cuda.synchronize()
        best[b] = n * frames / (time.perf_counter() - start)
        image_inputs = {k: inputs[k] for k in ("pixel_values", "image_grid_thw") if k in inputs}  # Qwen: the grid
        try:
            with torch.inference_mode():
                scorer.model.get_image_features(**image_inputs)
                torch.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(n):
                    scorer.model.get_image_features(**image_inputs)
                torch.cuda.synchronize()
            vision[b] = n * frames / (time.perf_counter() - start)
        except (TypeError, KeyError) as e:  # a family whose image features need more inputs
            print(f"vision tower alone not timed: {type(e).__name__}: {e}", file=sys.stderr)
    tokens = inputs["input_ids"].shape[1]
    del scorer
    torch.cuda.empty_cache()
    b = max(best, key=best.get)
    out = {"frames_s": best[b], "batch": b, "all": best, "tokens_per_prompt": tokens}
    if b in vision:
        out["vision_frames_s"] = vision[b]
        out["vision_share"] = best[b] / vision[b]  # of the forward pass's time
    return out


def naive(model, paths, num_frames=40) -> dict:
    """One generate(max_new_tokens=1) per frame, batch 1, CPU preprocessing: the loop users write first."""
    from transformers import AutoProcessor

    from lmm_vqa.checkpoints import load_scorer

    scorer = load_scorer(model, device="cuda", compile="off", **SCORER)
    net, processor = scorer.model, AutoProcessor.from_pretrained(model)
    frames = [f for p in paths[:4] for f in scorer.load(p).frames][:num_frames]
    text = scorer.render_prompt(1)
    ids = [i[0] for i in scorer.level_ids]

    def one(frame):
        inputs = processor(text=[text], images=[frame], return_tensors="pt").to("cuda", torch.bfloat16)
        out = net.generate(**inputs, max_new_tokens=1, output_scores=True, return_dict_in_generate=True,
                           do_sample=False)
        return out.scores[0][0, ids].float().softmax(-1).cpu()

    one(frames[0])
    torch.cuda.synchronize()
    start = time.perf_counter()
    for f in frames:
        one(f)
    seconds = time.perf_counter() - start
    del scorer  # the model itself goes with this frame (net, one) on return
    torch.cuda.empty_cache()
    return {"frames_s": len(frames) / seconds}


def multi_gpu(model, paths, batch_size, workers, work) -> dict:
    out = work / "multi.csv"
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lmm_vqa.cli", "score", *paths, "--model", str(model), "--out", str(out),
                    "--quiet", "--devices", "all", "--batch-size", str(batch_size), "--workers", str(workers)],
                   check=True)
    seconds = time.perf_counter() - start  # model loading included, unlike the single-GPU rows
    from lmm_vqa.results import read_rows

    rows = read_rows(out)
    frames = sum(int(r["num_frames"]) for r in rows if r["status"] == "ok")
    return {"videos_s": len(rows) / seconds, "frames_s": frames / seconds, "seconds": seconds}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default="/tmp/bench")
    p.add_argument("--videos", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--rows", nargs="*", default=["ceiling", "e2e", "naive", "hive", "multi"],
                   choices=["ceiling", "ceiling_compiled", "ceiling_fp8", "ceiling_fp8_compiled", "ceiling_fp8t_compiled", "e2e",
                            "e2e_compiled", "e2e_fp8", "e2e_fp8_compiled", "e2e_fp8t_compiled", "e2e_serial", "e2e_unpinned", "syncs", "timeline", "timeline_cpu", "naive", "hive", "multi", "profile", "scaling"])
    p.add_argument("--family", choices=["llava", "mplug_owl2", "qwen2_vl", "qwen3_5_0.8b", "qwen3_5_9b"],
                   default="llava",
                   help="model shape: LLaVA-1.5-7B (default), mPLUG-Owl2 7B (Q-Align, OneAlign), Qwen2-VL-7B (native "
                        "resolution: about 1200 visual tokens a 1280x720 frame), Qwen3.5-0.8B or -9B (Q-ReAlign)")
    p.add_argument("--preset", help="score as this preset (lmm_vqa/presets), e.g. q-realign-mini: its prompt, "
                                    "frames, mode and frame size")
    p.add_argument("--mode", choices=["frame", "clip"],
                   help="clip: a video's keyframes in one prompt; --batch-size then counts videos (default: the "
                        "preset's, else frame)")
    p.add_argument("--ceiling-batches", type=int, nargs="*", help="model-only batch sizes (default 8 16 32 64 in "
                                                                   "frame mode, 1 2 4 8 in clip mode)")
    p.add_argument("--scaling-videos", type=int, default=96, help="videos for the scaling rows")
    p.add_argument("--switch-interval", type=float, help="the interpreter's thread switch interval, seconds (Python's "
                                                         "default 0.005): how long the thread that feeds the GPU may "
                                                         "wait for the GIL while decode threads hold it")
    p.add_argument("--record", help="result file, named after the benchmark it records (default "
                                    "eval/results/score_throughput.json)")
    args = p.parse_args(argv)
    work = Path(args.work)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    from lmm_vqa.presets import get_preset

    preset = get_preset(args.preset).scorer if args.preset else {}  # its scoring settings, under --mode
    args.mode = args.mode or preset.get("mode", "frame")
    SCORER.update({"preset": args.preset} if args.preset else {}, mode=args.mode)
    model, paths = prepare(work, args.videos, args.family)
    ceiling_batches = args.ceiling_batches or ([8, 16, 32, 64] if args.mode == "frame" else [1, 2, 4, 8])
    rows = {}
    n_gpu = torch.cuda.device_count()
    plan = {"ceiling": ("model only", lambda: model_only(model, paths, ceiling_batches)),
            "ceiling_compiled": ("model only, compiled", lambda: model_only(model, paths, ceiling_batches, compile="on")),
            "ceiling_fp8": ("model only, fp8", lambda: model_only(model, paths, ceiling_batches, dtype="fp8")),
            "ceiling_fp8_compiled": ("model only, fp8, compiled", lambda: model_only(model, paths, ceiling_batches,
                                                                                     dtype="fp8", compile="on")),
            "ceiling_fp8t_compiled": ("model only, fp8 per tensor, compiled", lambda: model_only(
                model, paths, ceiling_batches, dtype="fp8", compile="on", fp8_scaling="tensor")),
            "e2e": ("end to end", lambda: end_to_end(model, paths, args.batch_size, args.workers)),
            "e2e_unpinned": ("end to end, pageable", lambda: end_to_end(model, paths, args.batch_size, args.workers,
                                                                        pin=False)),
            "syncs": ("host syncs", lambda: host_syncs(model, paths, args.batch_size)),
            "e2e_fp8": ("end to end, fp8", lambda: end_to_end(model, paths, args.batch_size, args.workers,
                                                              dtype="fp8")),
            "e2e_fp8_compiled": ("end to end, fp8, compiled", lambda: end_to_end(model, paths, args.batch_size,
                                                                                 args.workers, dtype="fp8",
                                                                                 compile="on")),
            "e2e_fp8t_compiled": ("end to end, fp8 per tensor, compiled", lambda: end_to_end(
                model, paths, args.batch_size, args.workers, dtype="fp8", compile="on", fp8_scaling="tensor")),
            "e2e_compiled": ("end to end, compiled", lambda: end_to_end(model, paths, args.batch_size, args.workers,
                                                                        compile="on")),
            "e2e_serial": ("end to end, serial", lambda: end_to_end(model, paths, args.batch_size, args.workers,
                                                                    in_flight=False)),
            "naive": ("naive loop", lambda: naive(model, paths)),
            "hive": ("HIVE end to end", lambda: end_to_end(build_hive(model, work), paths[:8], args.batch_size,
                                                           args.workers)),
            "multi": (f"end to end, {n_gpu} GPUs", lambda: multi_gpu(model, paths, args.batch_size, args.workers,
                                                                     work)),
            "timeline": ("end to end, GPU trace", lambda: timeline(model, paths, args.batch_size, args.workers)),
            "timeline_cpu": ("end to end, GPU+host trace", lambda: timeline(model, paths, args.batch_size, args.workers,
                                                                             cpu=True)),
            "profile": ("end to end, profiled", lambda: profile(model, paths, args.batch_size, args.workers)),
            "scaling": ("scaling", lambda: scaling(model, prepare(work, args.scaling_videos)[1], args.batch_size,
                                                   args.workers, work))}
    for key in args.rows:
        name, run = plan[key]
        if key in ("multi", "scaling") and n_gpu < 2:
            continue
        try:
            rows[name] = run()
            print(f"{name}: {rows[name].get('frames_s', float('nan')):.1f} frames/s"
                  + (f", warm-up {rows[name]['warmup_s']:.1f} s" if "warmup_s" in rows[name] else ""), flush=True)
        except Exception as e:  # one failed row must not hide the others
            print(f"row {name!r} failed: {type(e).__name__}: {e}", file=sys.stderr)
    ceiling = rows.get("model only", {}).get("frames_s", float("nan"))
    tokens = rows.get("model only", {}).get("tokens_per_prompt", "?")
    frames = preset.get("frames", "fps:1")
    print(f"\n{torch.cuda.get_device_name()} x{n_gpu}, {args.family} shape, {args.mode} mode, {args.videos} videos "
          f"1280x720 10 s, {frames} keyframes, {tokens} tokens per prompt")
    print(f"{'row':<26}{'videos/s':>10}{'frames/s':>10}{'% ceiling':>11}{'steady':>8}{'% ceiling':>11}{'GPU GiB':>9}")
    for name, r in rows.items():
        if name in ("scaling", "host syncs"):
            continue
        steady = r.get("steady_frames_s", float("nan"))
        print(f"{name:<26}{r.get('videos_s', float('nan')):>10.2f}{r['frames_s']:>10.1f}"
              f"{100 * r['frames_s'] / ceiling:>10.0f}%{steady:>8.1f}{100 * steady / ceiling:>10.0f}%"
              f"{r.get('mem_gib', float('nan')):>9.1f}")
    if "host syncs" in rows:
        for stage, where in rows["host syncs"]["syncs"].items():
            print(f"host syncs in one batch's {stage}: {where or 'none'}")
    for name in [k for k in rows if k.startswith("end to end, ") and "scores" in rows[k]]:
        if "end to end" not in rows:
            break
        eager, other = (np.array(rows[k]["scores"]) for k in ("end to end", name))
        rows[name]["max_score_diff_vs_eager"] = float(np.abs(eager - other).max())
        rows[name]["mean_score_diff_vs_eager"] = float(np.abs(eager - other).mean())
        print(f"{name[len('end to end, '):]} vs eager bf16, score difference (1-5 scale): largest "
              f"{rows[name]['max_score_diff_vs_eager']:.4f}, mean {rows[name]['mean_score_diff_vs_eager']:.4f}; "
              f"warm-up {rows[name]['warmup_s']:.1f} s ({rows['end to end']['warmup_s']:.1f} s eager)")
    if "model only" in rows:
        print(f"model-only frames/s by batch size: { {k: round(v, 1) for k, v in rows['model only']['all'].items()} }")
        if "vision_share" in rows["model only"]:
            print(f"vision tower + projector alone: {rows['model only']['vision_frames_s']:.1f} frames/s, "
                  f"{100 * rows['model only']['vision_share']:.0f}% of the forward pass; the language model the rest")
    if "end to end, profiled" in rows:
        r = rows["end to end, profiled"]
        print("end-to-end time split (main thread): " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["split"].items()))
        print("each stage alone, frames/s: " + ", ".join(f"{k} {v:.1f}" for k, v in r["alone_frames_s"].items())
              + f" (decoder: {', '.join(r['decoder'])}; forward alone: the model-only row)")
    for name in ("end to end, GPU trace", "end to end, GPU+host trace"):
        if name not in rows:
            continue
        r = rows[name]
        if r["host_calls_under_gaps_s"]:
            print(f"host calls under the GPU's idle gaps over 5 ms, seconds: {r['host_calls_under_gaps_s']}")
        print(f"{name}: GPU busy {100 * r['gpu_busy']:.0f}% of {r['wall_s']:.1f} s; idle "
              f"{r['idle_s']:.2f} s, of which {r['idle_in_gaps_over_5ms_s']:.2f} s in {r['gaps_over_5ms']} gaps over "
              f"5 ms (largest, ms: {r['largest_gaps_ms']})")
    if "scaling" in rows:
        for n, r in rows["scaling"].items():
            print(f"--devices, {n} GPU(s), {args.scaling_videos} videos: {r['frames_s']:.1f} frames/s steady "
                  f"(first row to last), {r['wall_s']:.1f} s wall with model loading")
    info = {"videos": args.videos, "batch_size": args.batch_size, "workers": args.workers, "tokens_per_prompt": tokens,
            "family": args.family, "mode": args.mode, "preset": args.preset}
    name = Path(args.record).stem if args.record else "score_throughput"  # e.g. score_scaling.json
    print(f"wrote {record.write(name, {'setup': info, 'rows': rows}, args.record)}")


if __name__ == "__main__":
    main()
