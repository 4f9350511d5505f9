"""The test-only method's config folder, shared by the runner tests (``MOTIONREPRO_CONFIG_PATH``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runner.test_runner import CONFIGS


@pytest.fixture(scope="module")
def cfg_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("configs")
    for rel, text in CONFIGS.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(text)
    return d
