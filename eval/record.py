"""A benchmark's machine-readable result: its figures, with the command, commit, machine and versions
that produced them. Written to eval/results/NAME.json (or --record PATH); `eval/render_benchmarks.py`
renders docs/benchmarks.md's tables from these files, so no figure there is typed in."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "decord", "av", "torchao")


def _commit() -> str:
    """LMM_VQA_COMMIT where the checkout has no git (the GPU machine gets a copy of the tree), else HEAD."""
    if os.environ.get("LMM_VQA_COMMIT"):
        return os.environ["LMM_VQA_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict:
    out = {"cpu_cores": os.cpu_count(), "python": platform.python_version()}
    try:
        import torch

        if torch.cuda.is_available():
            out.update(gpu=torch.cuda.get_device_name(), gpus=torch.cuda.device_count())
    except ImportError:
        pass
    return out


def versions() -> dict:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def write(name: str, figures, path: str | os.PathLike | None = None) -> Path:
    """Write eval/results/NAME.json (or `path`) and return where it went."""
    path = Path(path) if path else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "command": shlex.join(["python", *sys.argv]), "commit": _commit(),
              "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"), "machine": machine(),
              "versions": versions(), "figures": figures}
    path.write_text(json.dumps(record, indent=2, default=float) + "\n")
    return path
