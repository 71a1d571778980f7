"""Label files -> `datasets.Dataset` with one row per video.

Columns: `path` (the video file, resolved against the label file's folder), `name` (the key
predictions are joined on: the path relative to the video folder), `mos`, `std` (NaN where
unknown), `group` (CVQAD: "sequence|preset"; else ""), `subset` (VDPVE sub-dataset, CVQAD codec).
Layouts: VDPVE (`name,mos` or `name,-1,-1,mos` lines), CVQAD (`Subjective_scores.csv`),
Q-Align JSON (`img_path`, `gt_score`), and a generic CSV/JSON with `path, mos[, std][, group]`.
Video paths stay strings: decoding is decord/PyAV's job, not `datasets`' `Video` feature.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

VDPVE_SUBSETS = {"A": "colour/brightness/contrast", "B": "deshaking", "C": "deblurring"}
CVQAD_COLUMNS = ["codec", "preset", "sequence", "crf", "standard", "real_bitrate", "bitrate", "subjective_score"]
# CVQAD's label table has no file names; this is how `lmm-vqa synth --layout cvqad` names files.
CVQAD_NAME_PATTERN = "{sequence}/{codec}_{preset}_crf{crf}.mp4"
LAYOUTS = ("auto", "vdpve", "cvqad", "qalign", "generic")


def _records_to_dataset(records: list[dict]):
    from datasets import Dataset, Features, Value

    features = Features({"path": Value("string"), "name": Value("string"), "mos": Value("float64"),
                         "std": Value("float64"), "group": Value("string"), "subset": Value("string")})
    return Dataset.from_list(records, features=features)


def _record(video_dir: Path, name: str, mos, std=math.nan, group="", subset="") -> dict:
    try:
        mos = float(mos)
    except (TypeError, ValueError):
        raise ValueError(f"bad MOS {mos!r} for {name!r}") from None
    return {"path": str(video_dir / name), "name": name, "mos": mos, "std": float(std) if std not in ("", None)
            else math.nan, "group": str(group), "subset": str(subset)}


def vdpve_subset(name: str) -> str:
    """'A' for names like A001.mp4 or A_xyz.mp4 (colour/brightness/contrast), likewise B, C; else ''."""
    stem = Path(name).name
    if len(stem) > 1 and stem[0] in VDPVE_SUBSETS and not stem[1].isalpha():
        return stem[0]
    return ""


def read_vdpve(label_file: Path, video_dir: Path) -> list[dict]:
    out = []
    for lineno, line in enumerate(label_file.read_text().splitlines(), 1):
        parts = [p.strip() for p in line.split(",")]
        if not line.strip() or parts[0].lower() in ("name", "filename", "video"):
            continue
        if len(parts) not in (2, 4):
            raise ValueError(f"{label_file}:{lineno}: expected 'name,mos' or 'name,-1,-1,mos', got {line!r}")
        out.append(_record(video_dir, parts[0], parts[-1], subset=vdpve_subset(parts[0])))
    return out


def read_cvqad(label_file: Path, video_dir: Path, name_pattern: str = CVQAD_NAME_PATTERN) -> list[dict]:
    with open(label_file, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = set(CVQAD_COLUMNS) - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{label_file}: not a CVQAD table, missing columns {sorted(missing)}")
    return [_record(video_dir, r["path"] if r.get("path") else name_pattern.format(**r), r["subjective_score"],
                    group=f"{r['sequence']}|{r['preset']}", subset=r["codec"]) for r in rows]


def read_qalign_json(label_file: Path, video_dir: Path) -> list[dict]:
    items = json.loads(label_file.read_text())
    return [_record(video_dir, it["img_path"], it["gt_score"], it.get("std", math.nan)) for it in items]


def read_generic(label_file: Path, video_dir: Path) -> list[dict]:
    if label_file.suffix == ".json":
        items = json.loads(label_file.read_text())
    else:
        with open(label_file, newline="") as f:
            items = list(csv.DictReader(f))
    if not items or "path" not in items[0] or "mos" not in items[0]:
        raise ValueError(f"{label_file}: a generic label file needs 'path' and 'mos' fields")
    return [_record(video_dir, it["path"], it["mos"], it.get("std", math.nan), it.get("group", ""),
                    it.get("subset", "")) for it in items]


def load_label_files(label_files, layout: str = "auto", video_dir: str | os.PathLike | None = None,
                     check_files: bool = False):
    """One label file, or several (a list) read alike and concatenated: a training mixture."""
    if isinstance(label_files, (str, os.PathLike)):
        return load_labels(label_files, layout, video_dir, check_files)
    if not label_files:
        raise ValueError("no label files given")
    from datasets import concatenate_datasets

    return concatenate_datasets([load_labels(f, layout, video_dir, check_files) for f in label_files])


def detect_layout(label_file: Path) -> str:
    if label_file.suffix == ".json":
        items = json.loads(label_file.read_text())
        return "qalign" if items and "img_path" in items[0] else "generic"
    with open(label_file, newline="") as f:
        header = next(csv.reader(f), [])
    if "subjective_score" in header and "sequence" in header:
        return "cvqad"
    if "path" in header and "mos" in header:
        return "generic"
    return "vdpve"


def load_labels(label_file: str | os.PathLike, layout: str = "auto", video_dir: str | os.PathLike | None = None,
                check_files: bool = False):
    """A label file as a `datasets.Dataset` (columns above). `video_dir` defaults to the label
    file's folder. With `check_files`, a missing video raises a ValueError naming them all."""
    label_file = Path(label_file)
    if not label_file.is_file():
        raise ValueError(f"no such label file: {label_file}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    layout = detect_layout(label_file) if layout == "auto" else layout
    video_dir = Path(video_dir) if video_dir is not None else label_file.parent
    reader = {"vdpve": read_vdpve, "cvqad": read_cvqad, "qalign": read_qalign_json, "generic": read_generic}[layout]
    records = reader(label_file, video_dir)
    if not records:
        raise ValueError(f"{label_file}: no labelled videos")
    bad = [r["name"] for r in records if not math.isfinite(r["mos"])]
    if bad:
        shown = ", ".join(bad[:10]) + (f", ... ({len(bad)} in all)" if len(bad) > 10 else "")
        raise ValueError(f"{len(bad)} of {len(records)} videos in {label_file} have a MOS that is not a number "
                         f"(NaN or infinite): {shown}")
    if check_files:
        missing = [r["name"] for r in records if not os.path.isfile(r["path"])]
        if missing:
            shown = ", ".join(missing[:10]) + (f", ... ({len(missing)} in all)" if len(missing) > 10 else "")
            raise ValueError(f"{len(missing)} of {len(records)} videos in {label_file} are missing under "
                             f"{video_dir}: {shown}")
    return _records_to_dataset(records)
