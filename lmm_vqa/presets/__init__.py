"""Presets: how each published quality model is scored by its authors, as data.

One JSON file per model in this folder (adding a model is adding a file):

    name      the preset's name (`--preset NAME`, `lmm-vqa models`)
    models    hub ids it is chosen for automatically (a checkpoint folder's own scorer.json still wins)
    family    the model family (`lmm_vqa.backbones`)
    scorer    ScorerConfig fields: mode, frames, max_frames, prompt, levels, ...
    paper     the paper, and `code`: the authors' scoring code this preset follows
    trained_on  the data the checkpoint was trained on
    reported  what the authors report, as they report it ({} where nothing applies)
    tested    how this preset was tested here
    notes     where the preset departs from the authors' code, and why
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Preset:
    name: str
    models: tuple[str, ...]
    family: str
    scorer: dict
    paper: str = ""
    code: str = ""
    trained_on: str = ""
    reported: dict = field(default_factory=dict)
    tested: str = ""
    notes: str = ""


@functools.cache
def presets() -> dict[str, Preset]:
    """Every shipped preset, by name."""
    out = {}
    for path in sorted(FOLDER.glob("*.json")):
        values = json.loads(path.read_text())
        try:
            preset = Preset(**{**values, "models": tuple(values.get("models", ()))})
        except TypeError as e:
            raise ValueError(f"{path}: {e}") from None
        out[preset.name] = preset
    return out


def get_preset(name: str) -> Preset:
    """The preset called `name`; an unknown name fails with the known ones listed."""
    known = presets()
    if name not in known:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(known)}")
    return known[name]


def _hub_id(model: str) -> str:
    """A hub id from a hub id or a folder of the hub's cache (.../models--ORG--NAME/snapshots/REV), with the
    subfolder inside the snapshot if it is one (ORG/NAME/SUB)."""
    cached = re.search(r"models--([^/\\]+?)--([^/\\]+)[/\\]snapshots[/\\][^/\\]+[/\\]?(.*)$", str(model))
    if not cached:
        return str(model)
    sub = cached.group(3).replace("\\", "/").strip("/")
    return f"{cached.group(1)}/{cached.group(2)}" + (f"/{sub}" if sub else "")


def preset_for(model: str) -> Preset | None:
    """The preset whose `models` name this checkpoint (a hub id, or a folder of the hub's cache), if any."""
    repo = _hub_id(model).lower()
    return next((p for p in presets().values() if repo in (m.lower() for m in p.models)), None)
