"""Result rows -> CSV or JSONL, written and flushed one at a time, resumable.

Reopening an existing file keeps its `ok` rows (those inputs are skipped) and drops its
`error` rows (those inputs are tried again), so a crash loses nothing and a rerun finishes.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

CORE_COLUMNS = ["path", "status", "error", "score", "score_01"]
TAIL_COLUMNS = ["num_frames", "frame_scores", "seconds"]


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
    def __init__(self, path: str | os.PathLike, level_words, extra_columns=()):
        self.path = Path(path)
        if self.path.suffix not in (".csv", ".jsonl"):
            raise ValueError(f"--out must end in .csv or .jsonl, got {self.path.name}")
        self.columns = CORE_COLUMNS + [f"p_{w}" for w in level_words] + list(extra_columns) + TAIL_COLUMNS
        self.done: set[str] = set()
        kept = []
        if self.path.is_file() and self.path.stat().st_size > 0:
            old = read_rows(self.path)
            if old and self.path.suffix == ".csv" and set(self.columns) - set(old[0]):
                raise ValueError(f"{self.path} was written with other columns (another level set?): "
                                 f"missing {sorted(set(self.columns) - set(old[0]))}; use a new --out")
            kept = [r for r in old if r.get("status") == "ok"]
            self.done = {path_key(r["path"]) for r in kept}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Rewrite with the kept rows only (atomically), then append.
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            self._start(f)
            for row in kept:
                self._write(f, row)
        os.replace(tmp, self.path)
        self.file = open(self.path, "a", newline="")

    def _start(self, f):
        if self.path.suffix == ".csv":
            csv.DictWriter(f, self.columns).writeheader()

    def _write(self, f, row):
        if self.path.suffix == ".csv":
            flat = {k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()}
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(flat)
        else:
            f.write(json.dumps(row) + "\n")

    def write(self, row: dict) -> None:
        self._write(self.file, row)
        self.file.flush()

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
