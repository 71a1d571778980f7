"""Typed, strict experiment configs: a flat dataclass, a YAML file, `key=value` overrides.

Unknown keys fail, values are type-checked against the dataclass, and the resolved config is
saved next to the outputs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import yaml


def _type_ok(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, hint) if isinstance(hint, type) else True


def load_config(cls, path: str | Path | None = None, overrides: list[str] = ()):
    """`cls` from a YAML file with `key=value` overrides (values parsed as YAML)."""
    known = {f.name for f in dataclasses.fields(cls)}
    values, where, raw_text = {}, {}, {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of settings")
        values.update(loaded)
        where.update({k: str(path) for k in loaded})
    for item in overrides:
        key, eq, raw = item.partition("=")
        if not eq:
            raise ValueError(f"override {item!r} is not key=value")
        values[key.strip()] = yaml.safe_load(raw)
        where[key.strip()] = "the command line"
        raw_text[key.strip()] = raw.strip()
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown} (from {', '.join(sorted({where[k] for k in unknown}))}); "
                         f"known: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if isinstance(value, bool) and _type_ok("", hints[key]) and not _type_ok(True, hints[key]):
            # YAML 1.1 reads no/yes/on/off as booleans: a text setting (mixed_precision: no) keeps its word
            values[key] = value = raw_text.get(key, "yes" if value else "no")
        if isinstance(value, str) and _type_ok(1.0, hints[key]) and not _type_ok("", hints[key]):
            try:  # YAML reads 1e-3 (no dot) as a string
                values[key] = value = float(value)
            except ValueError:
                pass
        if not _type_ok(value, hints[key]):
            raise ValueError(f"setting {key}={value!r} (from {where[key]}) should be {hints[key]}")
    return cls(**values)


def save_config(config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
