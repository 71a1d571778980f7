"""Scoring on several devices: one process per device, inputs dealt round-robin, rows merged.

Each worker loads its own copy of the scorer on its device and scores its share; rows come back
through one queue as they finish, so the caller writes them to the one results file (resume works
by path, as for a single device). A worker that dies takes the run down with its traceback.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from typing import Iterator


def resolve_devices(spec: str) -> list[str]:
    """'all' -> every CUDA device; 'cuda:0,cuda:1' or 'cpu,cpu' -> as listed."""
    if spec == "all":
        import torch

        n = torch.cuda.device_count()
        if n == 0:
            raise ValueError("--devices all: no CUDA device is visible")
        return [f"cuda:{i}" for i in range(n)]
    devices = [d.strip() for d in spec.split(",") if d.strip()]
    if not devices:
        raise ValueError(f"--devices: no device in {spec!r}")
    return devices


def _worker(rank, device, paths, load_kwargs, batch_size, num_workers, queue, quiet):
    try:
        from lmm_vqa.checkpoints import load_scorer

        if quiet:
            from lmm_vqa.cli import quiet_libraries

            quiet_libraries()
        scorer = load_scorer(device=device, **load_kwargs)
        for row in scorer.score_paths(paths, batch_size=batch_size, num_workers=num_workers):
            row["device"] = device
            queue.put(("row", row))
        queue.put(("done", rank))
    except BaseException:  # sent to the parent, which stops the run with it
        queue.put(("fatal", f"worker {rank} on {device}:\n{traceback.format_exc()}"))


def score_sharded(paths: list[str], devices: list[str], load_kwargs: dict, batch_size: int = 8,
                  num_workers: int = 2, quiet: bool = False) -> Iterator[dict]:
    """Result rows of `paths` scored on `devices`, in the order they finish."""
    ctx = mp.get_context("spawn")  # CUDA cannot be used in a forked child
    queue = ctx.Queue(maxsize=1024)
    shards = [paths[i::len(devices)] for i in range(len(devices))]
    procs = [ctx.Process(target=_worker, args=(i, d, shards[i], load_kwargs, batch_size, num_workers, queue, quiet),
                         daemon=True) for i, d in enumerate(devices) if shards[i]]
    for p in procs:
        p.start()
    running = len(procs)
    try:
        while running:
            kind, payload = queue.get()
            if kind == "row":
                yield payload
            elif kind == "done":
                running -= 1
            else:
                raise RuntimeError(f"scoring failed in a device process: {payload}")
    finally:
        for p in procs:
            if p.is_alive() and running:
                p.terminate()
            p.join()
