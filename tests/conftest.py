import pytest

from lmm_vqa.backbones import BACKBONES
from lmm_vqa.testing import build_tiny_checkpoint, write_test_videos


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    return write_test_videos(tmp_path_factory.mktemp("videos"))


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
