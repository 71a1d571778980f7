"""Result rows -> CSV or JSONL, written and flushed one at a time, resumable.

Reopening an existing file keeps its `ok` rows (those inputs are skipped) and drops its
`error` rows (those inputs are tried again), so a crash loses nothing and a rerun finishes.
What produced the rows (checkpoint, prompt, frames, levels, ...) is recorded beside the file in
`OUT.run.json`; a rerun with other settings is refused rather than mixing scores of two models.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

CORE_COLUMNS = ["path", "status", "error", "score", "score_01"]
TAIL_COLUMNS = ["num_frames", "frame_scores", "seconds", "warning"]


def record_path(path: str | os.PathLike) -> Path:
    """Where the record of a results file's settings lives: `results.csv` -> `results.csv.run.json`."""
    return Path(f"{path}.run.json")


def _differences(old, new, prefix="") -> list[str]:
    """'key: old -> new' for every setting that differs, nested keys dotted."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new))
                for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [f"{prefix[:-1]}: {old!r} -> {new!r}"]


def check_writable(path: Path) -> None:
    """A clear error now, not after a model has loaded, when `path` cannot be written."""
    for parent in [path, *path.parents]:
        if parent.exists():
            break
    if parent != path and not parent.is_dir():
        raise ValueError(f"cannot write {path}: {parent} is a file, not a folder")
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder; name a .csv or .jsonl file")
    if not os.access(path if path.exists() else parent, os.W_OK):
        raise ValueError(f"cannot write {path}: permission denied")


def path_key(path) -> str:
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def read_rows(path: str | os.PathLike) -> list[dict]:
    """Rows of a results file (CSV or JSONL), values as written (CSV: strings)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class ResultWriter:
    """Results file of one run. `settings` (from `checkpoints.run_settings`) are compared with those that
    wrote the rows already there: a difference is refused unless `overwrite`, which starts afresh."""

    def __init__(self, path: str | os.PathLike, level_words, extra_columns=(), settings: dict | None = None,
                 overwrite: bool = False):
        self.path = Path(path)
        if self.path.suffix not in (".csv", ".jsonl"):
            raise ValueError(f"--out must end in .csv or .jsonl, got {self.path.name}")
        check_writable(self.path)
        self.columns = CORE_COLUMNS + [f"p_{w}" for w in level_words] + list(extra_columns) + TAIL_COLUMNS
        self.done: set[str] = set()
        self.written = 0  # rows written by this run
        kept = []
        if self.path.is_file() and self.path.stat().st_size > 0 and not overwrite:
            old = read_rows(self.path)
            kept = [r for r in old if r.get("status") == "ok"]
            if kept:
                self._check_settings(settings, len(kept))
            if old and self.path.suffix == ".csv" and set(self.columns) - set(old[0]):
                raise ValueError(f"{self.path} was written with other columns (another level set?): "
                                 f"missing {sorted(set(self.columns) - set(old[0]))}; use another --out, or "
                                 "--overwrite to start it afresh")
            self.done = {path_key(r["path"]) for r in kept}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if settings is not None:
            from lmm_vqa import __version__

            record_path(self.path).write_text(json.dumps({**settings, "lmm_vqa": __version__}, indent=2) + "\n")
        # Rewrite with the kept rows only (atomically), then append.
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            self._start(f)
            for row in kept:
                self._write(f, row)
        os.replace(tmp, self.path)
        self.file = open(self.path, "a", newline="")

    def _check_settings(self, settings: dict | None, num_kept: int) -> None:
        if settings is None:
            return
        record = record_path(self.path)
        if not record.is_file():
            print(f"warning: {self.path} has no record of the settings its {num_kept} scored rows were made with "
                  f"({record.name}); resuming as if they were this run's", file=sys.stderr)
            return
        old = json.loads(record.read_text())
        if "weights" not in old:  # recorded by an earlier lmm-vqa: the path alone must do
            settings = {k: v for k, v in settings.items() if k != "weights"}
        diff = _differences({k: old.get(k) for k in settings}, settings)
        if diff:
            raise ValueError(f"{self.path} holds {num_kept} rows scored with other settings than this run's:\n  "
                             + "\n  ".join(diff) + "\nResuming would mix the two in one file: use another --out, "
                             "or --overwrite to discard those rows and start afresh")

    def _start(self, f):
        if self.path.suffix == ".csv":
            csv.DictWriter(f, self.columns, lineterminator="\n").writeheader()

    def _write(self, f, row):
        if self.path.suffix == ".csv":
            flat = {k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()}
            csv.DictWriter(f, self.columns, extrasaction="ignore", lineterminator="\n").writerow(flat)
        else:
            f.write(json.dumps(row) + "\n")

    def write(self, row: dict) -> None:
        self._write(self.file, row)
        self.file.flush()
        self.written += 1

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
