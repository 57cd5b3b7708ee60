"""Shared fixtures: tiny generated IDX data sets (read through the real loader) and the real MNIST."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("MNISTBENCH_DATA", REPO.parent / "shared" / "data"))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX file: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian dims, then the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as handle:
        handle.write(bytes([0, 0, 0x08, array.ndim]))
        handle.write(struct.pack(f">{array.ndim}I", *array.shape))
        handle.write(array.tobytes())


def make_digits(n: int, seed: int, size: int = 28):
    """n labelled 'digits': class c lights up its own 4-pixel-wide band, plus noise. Learnable, not trivial."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 90, size=(n, size, size)).astype(np.float64)
    for c in range(10):
        rows = slice((c * 2) % (size - 4), (c * 2) % (size - 4) + 4)
        cols = slice((c * 5) % (size - 4), (c * 5) % (size - 4) + 4)
        band = images[labels == c]
        band[:, rows, cols] += 165
        images[labels == c] = band
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def write_dataset(root: Path, n_train: int = 600, n_test: int = 200, folder: str = "MNIST") -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for part, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = make_digits(n, seed)
        write_idx(raw / f"{part}-images-idx3-ubyte", images)
        write_idx(raw / f"{part}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A data root with 600 train / 200 test generated images in torchvision's MNIST layout."""
    return write_dataset(tmp_path_factory.mktemp("tiny-data"))


@pytest.fixture
def tiny_env(tiny_root, monkeypatch):
    monkeypatch.setenv("MNISTBENCH_DATA", str(tiny_root))
    return tiny_root


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The real MNIST (../shared/data or $MNISTBENCH_DATA); integration tests skip without it."""
    if not (REAL_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"real MNIST not found under {REAL_DATA}")
    return REAL_DATA
