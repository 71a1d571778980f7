"""Scoring on several processes: one rank per device, each scoring its share, one merged results file.

The launch is the one users already run: `torchrun` or `accelerate launch` (one node or many) starts
`lmm-vqa score` once per rank with RANK, WORLD_SIZE and LOCAL_RANK set, and every rank runs
`score_ranked`. `--devices` on one host is the same thing launched from here: one process per device
(`launch_local`). Ranks meet through torch.distributed (gloo, barriers only; no tensors move):

1. rank 0 folds the part files an interrupted run left into the results file and checks the file's
   settings (as a single-process run does); a refusal there stops every rank with the same message;
2. every rank reads the results file, takes its share of what is left (every WORLD_SIZE-th input,
   from its RANK) and writes its rows to `OUT.rank<R>.jsonl` as they are scored;
3. rank 0 merges the parts into the results file, removes them, and says what was scored.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def launched() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when started by torchrun / accelerate launch with >1 processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))


def part_path(out: str | os.PathLike, rank: int) -> Path:
    return Path(f"{out}.rank{rank}.jsonl")


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


def _parts_on_disk(out) -> list[Path]:
    """Every rank's part file of `out` there is, this run's or an earlier one's."""
    return sorted(Path(out).parent.glob(Path(out).name + ".rank*.jsonl"))


def _fold_parts(writer, out, errors: bool) -> None:
    """Rows of the ranks' part files go into the results file, and the parts go: at the end of a run all
    of them; at the start, what an interrupted run scored (`errors=False`: its failures are retried)."""
    from lmm_vqa.results import path_key, read_rows

    for part in _parts_on_disk(out):
        for row in read_rows(part):
            if (errors or row.get("status") == "ok") and path_key(row["path"]) not in writer.done:
                writer.write(row)
                writer.done.add(path_key(row["path"]))
        part.unlink()


def score_ranked(paths: list[str], out, columns: tuple, settings: dict, overwrite: bool, score_share,
                 quiet: bool = False) -> int:
    """This rank's part of a multi-process run (see the module docstring). `score_share(paths)` yields
    the rows of this rank's share. Returns the exit code: rank 0 the run's, other ranks 0."""
    import torch.distributed as dist
    from tqdm import tqdm

    from lmm_vqa.results import ResultWriter, path_key, read_rows

    rank, world, _ = launched()
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    try:
        refusal = [None]
        if rank == 0:
            try:
                with ResultWriter(out, *columns, settings, overwrite) as writer:
                    if overwrite:  # an earlier run's parts go with its rows
                        for part in _parts_on_disk(out):
                            part.unlink()
                    _fold_parts(writer, out, errors=False)
            except ValueError as e:
                refusal = [str(e)]
        dist.broadcast_object_list(refusal, src=0)
        if refusal[0]:
            if rank == 0:
                raise ValueError(refusal[0])
            return 2  # rank 0 says why
        done = {path_key(r["path"]) for r in read_rows(out) if r.get("status") == "ok"}
        todo = [p for p in paths if path_key(p) not in done]
        if rank == 0 and len(todo) < len(paths):
            print(f"resuming {out}: {len(paths) - len(todo)} of {len(paths)} inputs already scored", file=sys.stderr)
        share = todo[rank::world]
        parts = [part_path(out, r) for r in range(world)]
        bar = tqdm(total=len(todo), unit="video", desc=f"scoring on {world} processes", disable=quiet or rank != 0)
        polled = 0.0
        with ResultWriter(parts[rank], *columns, overwrite=True) as writer:
            for row in score_share(share):
                writer.write(row)
                if row["status"] != "ok":
                    bar.write(f"failed: {row['path']}: {row['error']}")
                if rank == 0 and not quiet and time.monotonic() - polled > 1:  # reading every part: once a second
                    polled = time.monotonic()
                    bar.n = sum(_lines(p) for p in parts)  # every rank's rows so far
                    bar.refresh()
        dist.barrier()  # every part is complete
        if rank != 0:
            return 0
        bar.close()
        with ResultWriter(out, *columns, settings) as writer:
            _fold_parts(writer, out, errors=True)
        rows = read_rows(out)
        failed = sum(r.get("status") != "ok" for r in rows)
        print(f"{len(rows) - failed}/{len(paths)} scored, {failed} failed -> {out} ({world} processes)")
        return 1 if failed else 0
    finally:
        dist.destroy_process_group()


def _lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_local(argv: list[str], devices: list[str]) -> int:
    """`--devices`: this command again, once per device, as ranks of one run on this host (what torchrun
    would start, with each rank's device named). Returns rank 0's exit code, or the first failure's."""
    env = {**os.environ, "WORLD_SIZE": str(len(devices)), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port())}
    procs = []
    for rank, device in enumerate(devices):
        cmd = [sys.executable, "-m", "lmm_vqa.cli", *argv, "--device", device]
        procs.append(subprocess.Popen(cmd, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}))
    try:
        while any(p.poll() is None for p in procs):
            if any(p.poll() not in (None, 0, 1) for p in procs):  # a rank died: the others would wait forever
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        for p in procs:
            p.wait()
        return 130
    codes = [p.poll() for p in procs]
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait()
    bad = [c for c in codes if c not in (None, 0, 1)]
    return bad[0] if bad else codes[0]
