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


def make_result(family="softmax", impl="manual", status="ok", seed=0, epoch_seconds=(0.5, 0.4, 0.41, 0.39),
                test_acc=0.9, env=None, blocks=None, group=None, **config):
    """One RunResult as train.run_one writes it, from the few figures a test cares about."""
    from mnistbench.config import for_family
    from mnistbench.result import Block, Epoch, Interleave, RunResult, new_run_id

    cfg = for_family(family, impl, seed=seed, **config)
    history = tuple(Epoch(i + 1, 0.5 / (i + 1), 0.8, 0.6 / (i + 1), 0.85, s, 0.01)
                    for i, s in enumerate(epoch_seconds))
    interleave = None
    if blocks is not None:
        interleave = Interleave(group or "g1", 10, 0, tuple(Block(r, s, 10) for r, s in enumerate(blocks, 1)))
    n = cfg.n_classes
    confusion = tuple(tuple(10 if i == j else 0 for j in range(n)) for i in range(n))
    return RunResult(cfg, status, new_run_id(cfg), "2026-12-01T10:00:00Z", history=history if status != "failed" else (),
                     best_epoch=len(history), eval_seconds=0.1, test_loss=0.3, test_acc=test_acc if status != "failed" else None,
                     confusion=confusion if status != "failed" else None,
                     split_sizes={"train": 1000, "val": 200, "test": 10 * n},
                     noise={"cpu_steal_fraction": 0.0, "other_load": 0.0, "cpu_cores": 2},
                     env=env or {"host": "testhost", "torch": "2.15.0", "cpu_model": "test cpu", "threads": 2,
                                 "prefix": "/venv"},
                     interleave=interleave)
