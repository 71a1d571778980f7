"""Where a checkpoint is: a local folder, or a hub id that can be reached (or is in the local cache).

Checked before anything loads, so that a typo or a machine without network gets one clear sentence
at once instead of a download library's retries (minutes) and its traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

DEMO = "demo"  # --model demo / model=demo: the small model bundled in the package


def looks_like_path(name: str) -> bool:
    """A hub id is `org/name` (or `name`); `./x`, `../x`, `/x`, `~/x`, `a/b/c` and `x\\y` are paths."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def locate(model: str | os.PathLike, what: str = "--model") -> str:
    """`model` as a folder path or a hub id that loading will find (`demo`: the bundled demo model); a
    ValueError that says why not."""
    name = os.fspath(model)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name == DEMO:
        from lmm_vqa.scoring import demo_model_path

        return str(demo_model_path())
    if path.exists():
        raise ValueError(f"{what} {name}: a file, not a checkpoint folder")
    if looks_like_path(name):
        raise ValueError(f"{what} {name}: no such folder")
    return _reachable_hub_id(name, what)


def _reachable_hub_id(repo: str, what: str) -> str:
    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub.errors import RepositoryNotFoundError

    cached = isinstance(try_to_load_from_cache(repo, "config.json"), str)
    if constants.HF_HUB_OFFLINE:
        if not cached:
            raise ValueError(f"{what} {repo}: not a local folder, and HF_HUB_OFFLINE is set with the model not in "
                             "the local Hugging Face cache")
        return repo
    try:
        HfApi().model_info(repo, timeout=10)
    except RepositoryNotFoundError:
        raise ValueError(f"{what} {repo}: no such local folder, and no such model on the Hugging Face hub "
                         "(or it is private: log in with `hf auth login`)") from None
    except Exception as e:  # no network, DNS, proxy, timeout: whatever stops one request
        hint = ("it is in the local cache: rerun with HF_HUB_OFFLINE=1 to load it from there" if cached else
                "download it where there is a network (`hf download " + repo + "`) and copy the folder here, "
                "then pass that folder")
        raise ValueError(f"{what} {repo}: not a local folder, and the Hugging Face hub cannot be reached "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no answer'}); {hint}") from None
    return repo
