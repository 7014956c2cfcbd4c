"""Shared fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

# The benchmark sets live beside the repository (../shared/data, see its MANIFEST.md).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test when the benchmark sets are absent."""
    if not (SHARED_DATA / "test").is_dir():
        pytest.skip(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA
