"""`lmm-vqa` command line: thin wrappers that parse, call the library, print.

Heavy imports (torch, transformers) happen inside the commands that need them, so
`lmm-vqa --help` starts at once.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from lmm_vqa.video import MEDIA_EXTENSIONS


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files, folders (recursive, media extensions) and .txt/.csv lists of paths -> paths.

    Paths that do not exist are kept, so that they get an error row instead of vanishing.
    """
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MEDIA_EXTENSIONS)
            if not found:
                print(f"warning: no videos or images in folder {item} (looked for {', '.join(MEDIA_EXTENSIONS)})",
                      file=sys.stderr)
            out += found
        elif p.suffix.lower() == ".txt" and p.is_file():
            lines = [ln.strip() for ln in p.read_text().splitlines()]
            out += [str(p.parent / ln) for ln in lines if ln and not ln.startswith("#")]
        elif p.suffix.lower() == ".csv" and p.is_file():
            with open(p, newline="") as f:
                rows = list(csv.reader(f))
            if not rows:
                continue
            col = rows[0].index("path") if "path" in rows[0] else 0
            body = rows[1:] if "path" in rows[0] else rows
            out += [str(p.parent / r[col]) for r in body if r and r[col].strip()]
        else:
            out.append(item)
    seen, unique = set(), []
    for path in out:  # keep the first of duplicates: one row per input
        if os.path.abspath(path) not in seen:
            seen.add(os.path.abspath(path))
            unique.append(path)
    return unique


def add_scorer_args(p: argparse.ArgumentParser) -> None:
    """Flags shared by the commands that load a model; None means 'from scorer.json or default'."""
    p.add_argument("--model", help="checkpoint folder, fine-tuned (adapter) folder or Hugging Face hub id "
                                   "(default: the bundled demo model, trained on synthetic distortions only)")
    p.add_argument("--frames", help="keyframe sampling: fps:F (default fps:1), uniform:N, linspace:N, qwen:F or keyframes")
    p.add_argument("--max-frames", type=int, help="at most this many keyframes per video (default 16)")
    p.add_argument("--mode", choices=["frame", "clip"],
                   help="frame: score each keyframe and average (default); clip: all keyframes in one prompt")
    p.add_argument("--prompt", help="a prompt name from prompts/ or a prompt file")
    p.add_argument("--crops", type=int, help="for processors that keep the centre square (LLaVA's, the demo "
                                             "model's): score this many squares spread over each frame and average "
                                             "(default 1, the centre; the demo model: 3)")
    p.add_argument("--preset", help="score as a published model's preset (`lmm-vqa models` lists them; default: "
                                    "the checkpoint's own, found by its hub id)")
    p.add_argument("--device", help="cuda, cuda:1, cpu, ... (default: cuda if available)")
    p.add_argument("--dtype", choices=["bf16", "fp16", "fp32", "fp8"],
                   help="default: bf16 on GPU, fp32 on CPU; fp8: the language model's linear layers in float8 "
                        "(Ada/Hopper GPUs, needs torchao; faster, scores move a little: docs/benchmarks.md)")
    p.add_argument("--fp8-scaling", choices=["row", "tensor"],
                   help="with --dtype fp8: row (default) scales weights per output row and activations per token; "
                        "tensor, one scale per matrix (slower than row on an H200: docs/benchmarks.md)")
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                   help="torch.compile the language model's layers (auto: on on a GPU, off on the CPU): 1.3x the "
                        "model's frames/s on an H100 after a few seconds' warm-up (cached on disk), scores within "
                        "bf16's own tolerance (docs/benchmarks.md)")


def scorer_kwargs(args) -> dict:
    """load_scorer's arguments from the flags (None: from scorer.json or the default)."""
    return dict(model=args.model, dtype=args.dtype, mode=args.mode, frames=args.frames, max_frames=args.max_frames,
                prompt=args.prompt, crops=args.crops, fp8_scaling=args.fp8_scaling)


def describe_model(args, speak: bool = True):
    """--model and --preset as a Checkpoint; says on stderr (when `speak`) if the bundled demo model
    stands in for --model, and which preset the settings come from."""
    from lmm_vqa.checkpoints import demo_notice, describe

    ckpt = describe(args.model, args.preset)
    if speak and not args.model:
        print(f"note: {demo_notice()}", file=sys.stderr)
    if speak and ckpt.preset:
        print(f"note: scoring as the published '{ckpt.preset}' preset (`lmm-vqa models` shows it); flags override "
              "its settings", file=sys.stderr)
    return ckpt


def load_scorer_from_args(args, ckpt=None):
    """The scorer the flags describe; `ckpt`: --model already described (describe_model), not looked up again."""
    from lmm_vqa.checkpoints import load_scorer

    return load_scorer(device=args.device, compile=args.compile,
                       **{**scorer_kwargs(args), "model": ckpt or describe_model(args)})


def without_flag(argv: list[str], flag: str) -> list[str]:
    """argv less `flag VALUE` / `flag=VALUE`."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def check_flags(args) -> None:
    """Flag values that would fail only after the model has loaded (minutes for a 7B model) fail now."""
    for flag in ("batch_size", "workers", "max_frames", "max_new_tokens"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if getattr(args, "devices", None) and args.device:
        raise ValueError("--device and --devices cannot be used together: --devices names every device to use")
    if args.device:
        from lmm_vqa.checkpoints import check_device

        check_device(args.device)
    if getattr(args, "fp8_scaling", None) and getattr(args, "dtype", None) != "fp8":
        raise ValueError("--fp8-scaling applies to --dtype fp8 only")
    if getattr(args, "dtype", None) == "fp8" and not getattr(args, "devices", None):
        from lmm_vqa.checkpoints import check_device
        from lmm_vqa.fp8 import check_supported

        check_supported(check_device(args.device))


def quiet_libraries() -> None:
    """--quiet: the libraries' progress bars (weight loading), info and deprecation chatter off; our own
    errors, warnings and the result summary stay."""
    import warnings

    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_progress_bars()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="(torch|transformers|peft|accelerate)")


def cmd_score(args) -> int:
    from tqdm import tqdm

    from lmm_vqa.checkpoints import load_scorer, result_columns, run_settings
    from lmm_vqa.results import ResultWriter, path_key

    check_flags(args)
    if args.quiet:
        quiet_libraries()
    paths = expand_inputs(args.inputs)
    if not paths:
        print(f"error: no input videos found in {' '.join(args.inputs)}", file=sys.stderr)
        return 1
    from lmm_vqa.sharding import launch_local, launched, resolve_devices, score_ranked

    launch = launched()  # torchrun / accelerate launch: this process is one rank of several
    if args.devices and launch:
        raise ValueError("--devices starts its own processes: drop it when launching with torchrun or accelerate")
    if args.devices:  # the same run as under torchrun, its ranks started here, one per device
        return launch_local(without_flag(args.argv, "--devices"), resolve_devices(args.devices))
    # found (or looked up) once; rank 0 speaks for the run
    load_kwargs = {**scorer_kwargs(args), "model": describe_model(args, speak=launch is None or launch[0] == 0)}
    overrides = {k: v for k, v in load_kwargs.items() if k not in ("model", "dtype", "fp8_scaling")}
    words, extra = result_columns(load_kwargs["model"], **overrides)
    settings = run_settings(load_kwargs["model"], **overrides)
    if launch:
        import torch

        device = args.device or (f"cuda:{launch[2]}" if torch.cuda.is_available() else "cpu")

        def score_share(share):
            if not share:
                return iter(())
            scorer = load_scorer(device=device, compile=args.compile, **load_kwargs)
            return scorer.score_paths(share, batch_size=args.batch_size, num_workers=args.workers)

        return score_ranked(paths, args.out, (words, extra), settings, args.overwrite, score_share, args.quiet)
    # The results file is checked (writable, same settings as the rows already in it) before the model loads.
    with ResultWriter(args.out, words, extra, settings, args.overwrite) as writer:
        todo = [p for p in paths if path_key(p) not in writer.done]
        if len(todo) < len(paths):
            print(f"resuming {args.out}: {len(paths) - len(todo)} of {len(paths)} inputs already scored",
                  file=sys.stderr)
        failed = scored = 0
        try:
            scorer = load_scorer(device=args.device, compile=args.compile, **load_kwargs)
            rows = scorer.score_paths(todo, batch_size=args.batch_size, num_workers=args.workers)
            bar = tqdm(total=len(todo), unit="video", desc="scoring", disable=args.quiet)
            for row in rows:
                writer.write(row)
                if row["status"] == "ok":
                    scored += 1
                else:
                    failed += 1
                    bar.write(f"failed: {row['path']}: {row['error']}")
                bar.update(1)
                bar.set_postfix(failed=failed)
            bar.close()
        except KeyboardInterrupt:
            done = len(paths) - len(todo) + writer.written
            print(f"\ninterrupted: {done} of {len(paths)} inputs written to {args.out}; rerun the same command "
                  "to resume", file=sys.stderr)
            return 130
    skipped = len(paths) - len(todo)
    print(f"{scored + skipped}/{len(paths)} scored, {failed} failed -> {args.out}")
    if todo:
        from lmm_vqa.compilation import warmup_note

        note = warmup_note(scorer.model)
        if note and not args.quiet:
            print(note, file=sys.stderr)
    return 1 if failed else 0


def cmd_evaluate(args) -> int:
    from lmm_vqa import report

    result = report.run(args.predictions, args.labels, args.protocol, args.layout, args.out, args.column,
                        args.allow_missing)
    print(report.format_table(result))
    if args.out:
        print(f"wrote {Path(args.out) / 'metrics.json'} and {Path(args.out) / 'scatter.png'}")
    return 0


def cmd_synth(args) -> int:
    from tqdm import tqdm

    try:
        import skimage  # noqa: F401  (the sample images and the SSIM of the pseudo-MOS)
    except ImportError:
        raise ValueError("lmm-vqa synth needs scikit-image: pip install 'lmm-vqa[synth]'") from None

    from lmm_vqa import synth

    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 1280x720, got {args.size!r}") from None
    if args.variant != "plain" and args.layout != "graded":
        raise ValueError(f"--variant {args.variant} is a variant of --layout graded")
    total = args.sources * synth.videos_per_source(args.layout, args.variant, args.versions)
    with tqdm(total=total, unit="video", desc=f"synth {args.layout}") as bar:
        counts = synth.make(args.out_dir, args.layout, args.sources, (w, h), args.seconds, args.fps, args.seed, bar,
                            args.workers, args.variant, args.versions)
    print(f"wrote {sum(counts.values())} videos to {args.out_dir}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_explain(args) -> int:
    import json

    from lmm_vqa.explain import GenerationSettings, default_question, score_frames, start_chat

    check_flags(args)
    scorer = load_scorer_from_args(args)
    settings = GenerationSettings(args.max_new_tokens, args.temperature, args.top_p)
    chat = start_chat(scorer, args.video, settings, args.adapter)
    question = args.question or default_question()
    if scorer.explain_with and not args.json:
        print(f"note: a HIVE model answers with its {scorer.explain_with!r} adapter; scores fuse all its adapters",
              file=sys.stderr)
    if args.json:
        answer = chat.ask(question)
        out = {"video": args.video, "question": question, "answer": answer}
        if scorer.explain_with:
            out["adapter"] = scorer.explain_with
        if args.with_score:
            out.update(score_frames(scorer, chat.frames))
        print(json.dumps(out, indent=2))
        return 0
    while True:
        for piece in chat.ask_stream(question):
            print(piece, end="", flush=True)
        print()
        if args.with_score and len(chat.history) == 1:
            s = score_frames(scorer, chat.frames)
            levels = "  ".join(f"{w} {p:.2f}" for w, p in s.get("levels", {}).items())  # none from written answers
            print(f"\nscore {s['score']:.3f} ({s['score_01']:.3f} on 0-1)   {levels}".rstrip())
        if not args.chat:
            return 0
        try:
            question = input("\nyou> ").strip()
        except EOFError:
            return 0
        if question in ("", "exit", "quit"):
            return 0


def cmd_hive(args) -> int:
    from lmm_vqa import hive

    spec = hive.build(args.coarse, args.fine, args.val, args.out, args.layout, args.device, args.dtype,
                      args.batch_size)
    fit = spec["fit"]
    print(f"fusion weights {spec['weights']} fitted on {fit['n']} videos of {args.val}")
    print(f"val {fit['metric']}: coarse {fit['coarse']:.4f}  fine {fit['fine']:.4f}  fused {fit['fused']:.4f}; "
          f"distinct scores {fit['distinct_scores']}")
    print(f"score with: lmm-vqa score VIDEOS --model {args.out}")
    return 0


def cmd_train(args) -> int:
    from lmm_vqa.recipes.lora_finetune import main as train_main

    train_main(args.args)
    return 0


def cmd_serve(args) -> int:
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ValueError("lmm-vqa serve needs FastAPI and uvicorn: pip install 'lmm-vqa[serve]'") from None
    from lmm_vqa.serve import ServeSettings, serve

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        print(f"note: serving on {args.host} without --token: anyone who can reach it can use the model",
              file=sys.stderr)
    for folder in args.allow_dir or ():
        if not Path(folder).is_dir():
            raise ValueError(f"--allow-dir {folder}: no such folder")
    ckpt = describe_model(args)
    scorer = load_scorer_from_args(args, ckpt)
    settings = ServeSettings(max_upload_mb=args.max_upload_mb, max_seconds=args.max_seconds, queue_size=args.queue,
                             timeout_s=args.timeout, batch_size=args.batch_size, decode_workers=args.workers,
                             token=args.token, allow_dirs=tuple(args.allow_dir or ()))
    info = {"model": ckpt.identity, "preset": ckpt.preset or None, "kind": ckpt.kind}
    print(f"serving {ckpt.identity} on http://{args.host}:{args.port}/ (API schema: /docs); Ctrl-C stops",
          file=sys.stderr)
    serve(scorer, args.host, args.port, settings, info)
    return 0


def cmd_models(args) -> int:
    import json
    from dataclasses import asdict

    from lmm_vqa.levels import DEFAULT_LEVELS
    from lmm_vqa.presets import presets

    shipped = presets()
    if args.json:
        print(json.dumps([asdict(p) for p in shipped.values()], indent=2))
        return 0
    rows = [("preset", "checkpoint", "family", "scoring", "reported (authors)", "trained on")]
    for p in shipped.values():
        sc = p.scorer
        reads = (f"written answer {sc['answer_range'][0]}-{sc['answer_range'][1]}" if sc.get("method") == "answer"
                 else f"{len(sc.get('levels', DEFAULT_LEVELS.to_json()))} level words")
        mode = "video input" if sc.get("video_input") else f"{sc.get('mode', 'frame')} mode"
        how = f"{mode}, {sc.get('frames', 'fps:1')}, {reads}"
        reported = next((f"{k} {v}" for k, v in p.reported.items() if k == "LSVQ"), "-")
        rows.append((p.name, ", ".join(p.models) or "(--preset only)", p.family, how, reported, p.trained_on))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print("\nA preset applies by itself to the checkpoints it names (or take one with --preset NAME); a folder's own "
          "scorer.json and flags override it. Reported: LSVQ SRCC / PLCC where the authors give it. `lmm-vqa models "
          "--json` adds the papers, all reported figures, the authors' code each preset follows, how it was tested "
          "here and where it departs from the original.")
    return 0


def train_parser() -> argparse.ArgumentParser:
    """The recipe's arguments (train/lora_finetune.py parses with this too)."""
    from importlib.resources import files

    shipped = sorted(f.name[:-5] for f in files("lmm_vqa.recipes").joinpath("configs").iterdir()
                     if f.name.endswith(".yaml"))
    p = argparse.ArgumentParser(
        prog="lmm-vqa train", description="LoRA / QLoRA fine-tuning to emit quality levels (train/lora_finetune.py). "
        "On several GPUs: accelerate launch train/lora_finetune.py CONFIG ...",
        epilog=f"shipped configs: {', '.join(shipped)}. Every setting is a field of TrainConfig in "
               "train/lora_finetune.py, with a comment; model=demo trains from the bundled demo model (no download).")
    p.add_argument("config", help="YAML config (train/configs/) or the name of a shipped one")
    p.add_argument("overrides", nargs="*", help="key=value settings on top of the config, e.g. model=PATH epochs=1")
    p.add_argument("--resume", nargs="?", const="latest",
                   help="continue from OUTPUT_DIR's latest checkpoint or a given one")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmm-vqa", description="Video quality assessment with multimodal LLMs.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("score", help="score videos and images; one row per input",
                       description="Score videos and images with a Q-Align-style LMM.")
    p.add_argument("inputs", nargs="+", help="video/image files, folders (recursive), or .txt/.csv lists of paths")
    add_scorer_args(p)
    p.add_argument("--out", default="results.csv", help="results file, .csv or .jsonl; rerun to resume "
                                                        "(default: results.csv)")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per forward pass (default 8)")
    p.add_argument("--workers", type=int, default=2, help="video decoding threads (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="discard the rows already in --out and start afresh (by default a rerun resumes, and "
                        "refuses when --out was written with other settings)")
    p.add_argument("--devices", help="score on several devices at once, one process each: 'all' (every GPU) or a "
                                     "list such as cuda:0,cuda:1 (the same run as `torchrun --nproc-per-node N -m "
                                     "lmm_vqa.cli score ...`); each writes OUT.rank<R>.jsonl, merged into OUT at the end")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("serve", help="a web page and an HTTP API for scoring and explaining videos",
                       description="Hold the model once and serve a page (drop a video, see its score, ask why) "
                                   "and a JSON API (/docs).")
    add_scorer_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", default=os.environ.get("LMM_VQA_TOKEN"),
                   help="require 'Authorization: Bearer TOKEN' on the API (default: $LMM_VQA_TOKEN)")
    p.add_argument("--allow-dir", action="append", help="a server folder whose files /api/score/path may score "
                                                        "(repeatable; default: none)")
    p.add_argument("--max-upload-mb", type=float, default=500.0, help="per request (default 500)")
    p.add_argument("--max-seconds", type=float, default=600.0, help="longest video accepted (default 600)")
    p.add_argument("--queue", type=int, default=64, help="requests waiting for the model before 503 (default 64)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request (default 600)")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per forward pass (default 8)")
    p.add_argument("--workers", type=int, default=2, help="video decoding threads (default 2)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("models", help="the published quality models with a preset: how each is scored",
                       description="Presets of published quality models (lmm_vqa/presets/*.json).")
    p.add_argument("--json", action="store_true", help="everything about each preset, as JSON")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("evaluate", help="challenge metrics of predictions against labels",
                       description="Join `lmm-vqa score` results with labels and compute the challenge metrics.")
    p.add_argument("predictions", help="results file from `lmm-vqa score` (.csv or .jsonl)")
    p.add_argument("--labels", required=True, help="label file: VDPVE, CVQAD, Q-Align JSON or generic CSV/JSON")
    p.add_argument("--protocol", choices=["ntire2023", "aim2024"],
                   help="default: aim2024 for CVQAD labels, ntire2023 otherwise")
    p.add_argument("--layout", default="auto", choices=["auto", "vdpve", "cvqad", "qalign", "generic"])
    p.add_argument("--column", default="score", help="prediction column to evaluate (default: score)")
    p.add_argument("--out", help="folder for metrics.json and scatter.png")
    p.add_argument("--allow-missing", action="store_true",
                   help="evaluate the matched videos when some have no prediction or no label (counts reported)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("synth", help="make a synthetic challenge-like dataset of real encoded videos",
                       description="Synthetic VDPVE- or CVQAD-style data with pseudo-MOS from a full-reference "
                                   "measure, or the graded benchmark whose labels say what was done (needs "
                                   "scikit-image: pip install 'lmm-vqa[synth]').")
    p.add_argument("out_dir")
    p.add_argument("--layout", choices=["vdpve", "cvqad", "graded"], default="vdpve",
                   help="graded: frame-visible distortions at four strengths, MOS = 100 - 80 x strength")
    p.add_argument("--variant", choices=["plain", "local", "clustered", "narrow"], default="plain",
                   help="graded only: local = fine artefacts a resized frame hides; clustered = mild strengths, "
                        "MOS in a narrow band; narrow = plain's clips, MOS squeezed into 62-80")
    p.add_argument("--versions", type=int, default=None,
                   help="graded only: each source's pristine clip and this many of its other versions, drawn at "
                        "random per source (default: all of them); more content for the same number of videos, "
                        "for training sets")
    p.add_argument("--sources", type=int, default=10, help="source clips; splits are by source (default 10)")
    p.add_argument("--size", default="1280x720", help="WxH (default 1280x720, as VDPVE)")
    p.add_argument("--seconds", type=float, default=5.0, help="clip length (default 5)")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes, one source each (default: all cores); the files do not depend on it")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("explain", help="ask the model about a video's quality, in words",
                       description="The model sees the video's keyframes and answers in free text, streamed.")
    p.add_argument("video")
    add_scorer_args(p)
    p.add_argument("--question", help="default: prompts/explain.txt (overall quality and its reasons)")
    p.add_argument("--with-score", action="store_true", help="also print the level-token score of the same model")
    p.add_argument("--json", action="store_true", help="print one JSON object: question, answer, score, levels")
    p.add_argument("--chat", action="store_true", help="keep asking about the same video (empty line to quit)")
    p.add_argument("--adapter", choices=["on", "off"], default="on",
                   help="off: answer with a fine-tuned checkpoint's base model, its LoRA adapter disabled")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.0, help="0 (default): greedy and deterministic")
    p.add_argument("--top-p", type=float, default=0.9)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("hive", help="assemble a HIVE model: coarse + fine adapters, fusion fitted on validation",
                       description="Copy two fine-tuned adapter folders (5 levels and a finer level set, same base "
                                   "model and views) into one HIVE folder and fit their fusion weights.")
    p.add_argument("coarse", help="output folder of the coarse (5-level) training run")
    p.add_argument("fine", help="output folder of the fine-level training run")
    p.add_argument("--val", required=True, help="validation label file for the fusion fit")
    p.add_argument("--out", required=True, help="the HIVE folder to write")
    p.add_argument("--layout", default="auto", choices=["auto", "vdpve", "cvqad", "qalign", "generic"])
    p.add_argument("--device")
    p.add_argument("--dtype", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--batch-size", type=int, default=16)
    p.set_defaults(func=cmd_hive)

    p = sub.add_parser("train", help="LoRA / QLoRA fine-tuning on labelled videos", add_help=False,
                       description="Runs train/lora_finetune.py: CONFIG [key=value ...] [--resume [CHECKPOINT]]. "
                                   "On several GPUs: accelerate launch train/lora_finetune.py CONFIG ...")
    p.add_argument("args", nargs=argparse.REMAINDER, help="CONFIG (a YAML file or a shipped config name), "
                                                          "key=value overrides, --resume; --help for more")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:  # the recipe parses its own arguments; --help is answered here, without torch
        if any(a in ("-h", "--help") for a in argv[1:]):
            train_parser().parse_args(["--help"])
        args = argparse.Namespace(func=cmd_train, args=argv[1:])
    else:
        args = build_parser().parse_args(argv)
        args.argv = argv
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug of ours or a library's: one line, the traceback on request
        if os.environ.get("LMM_VQA_DEBUG"):
            raise
        print(f"error: {type(e).__name__}: {e}\n(this is a bug: rerun with LMM_VQA_DEBUG=1 for the traceback "
              "and report it)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
