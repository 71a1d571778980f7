import os
from pathlib import Path

import pytest

from lmm_vqa.backbones import BACKBONES
from lmm_vqa.testing import build_tiny_checkpoint, write_test_videos


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    # Encoded in a fresh process: libvpx's VP9 encoder fails with EINVAL in a process where a training
    # test has already run (thread state left behind by torch), and test order must not matter.
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(write_test_videos, tmp_path_factory.mktemp("videos")).result()


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """checkpoint(family, levels_single_token=True) -> folder of a tiny random checkpoint, built once."""
    built = {}

    def get(family, levels_single_token=True):
        key = (family, levels_single_token)
        if key not in built:
            folder = tmp_path_factory.mktemp(f"{family}_{'single' if levels_single_token else 'multi'}")
            built[key] = build_tiny_checkpoint(family, folder, levels_single_token=levels_single_token)
        return built[key]

    return get


FAMILIES = sorted(BACKBONES)


def cvqad_file(name: str) -> Path:
    """A file of the real CVQAD tables: $LMM_VQA_CVQAD_DIR, or shared/data/cvqad in or beside the checkout."""
    repo = Path(__file__).resolve().parents[1]
    for folder in (os.environ.get("LMM_VQA_CVQAD_DIR"), repo / "shared/data/cvqad", repo.parent / "shared/data/cvqad"):
        if folder and (Path(folder) / name).is_file():
            return Path(folder) / name
    return repo.parent / "shared/data/cvqad" / name  # absent: the tests that need it skip


@pytest.fixture(scope="session")
def synth_vdpve(tmp_path_factory):
    """A tiny synthetic VDPVE-style dataset of real encoded videos: 42 train, 21 val, 21 test."""
    from lmm_vqa import synth

    out = tmp_path_factory.mktemp("synth_vdpve")
    synth.make(out, "vdpve", sources=4, size=(64, 64), seconds=1, fps=4, seed=0)
    return out
