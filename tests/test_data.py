"""The loader on tiny IDX files written here, the notebook's splits, and the missing-data error."""
from __future__ import annotations

import gzip
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import make_digits, write_dataset, write_idx

from mnistbench import data
from mnistbench.config import for_family


def test_reads_tiny_idx_files(tiny_root):
    arrays = data.load_arrays("mnist", tiny_root)
    images, labels = arrays["train"]
    expected_images, expected_labels = make_digits(600, seed=1)
    assert images.dtype == torch.uint8 and images.shape == (600, 28, 28)
    assert torch.equal(images, torch.from_numpy(expected_images))
    assert torch.equal(labels, torch.from_numpy(expected_labels.astype(np.int64)))
    assert arrays["test"][0].shape == (200, 28, 28)


def test_reads_gzipped_files(tmp_path, tiny_root):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in (tiny_root / "MNIST" / "raw").iterdir():
        with open(path, "rb") as src, gzip.open(raw / f"{path.name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    plain, gz = data.load_arrays("mnist", tiny_root), data.load_arrays("mnist", tmp_path)
    assert torch.equal(plain["train"][0], gz["train"][0])


def test_fashion_and_kmnist_use_their_own_folders(tmp_path):
    write_dataset(tmp_path, 100, 50, folder="FashionMNIST")
    assert data.load_arrays("fashion-mnist", tmp_path)["train"][0].shape[0] == 100
    with pytest.raises(data.DataError, match="KMNIST"):
        data.load_arrays("kmnist", tmp_path)


def test_missing_files_name_folder_and_all_four(tmp_path):
    with pytest.raises(data.DataError) as err:
        data.load_arrays("mnist", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        assert name in message
    assert "\n" not in message


def test_nonexistent_root_is_an_error(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.load_arrays("mnist", tmp_path / "nope")


def test_bad_idx_files_are_named(tmp_path):
    root = write_dataset(tmp_path, 100, 50)
    raw = root / "MNIST" / "raw"
    labels = raw / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-7])  # truncated
    with pytest.raises(data.DataError, match="train-labels-idx1-ubyte is truncated"):
        data.load_arrays("mnist", root)
    write_idx(labels, np.zeros(99, np.uint8))  # one label short of the 100 images
    with pytest.raises(data.DataError, match="100 images but .*train-labels-idx1-ubyte has 99 labels"):
        data.load_arrays("mnist", root)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03" + bytes(100))
    write_idx(labels, np.zeros(100, np.uint8))
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte is not an IDX file"):
        data.load_arrays("mnist", root)


def counts(y):
    return Counter(y.tolist())


@pytest.mark.parametrize("family", ["logistic", "softmax"])
def test_stratified_split_tiny(tiny_root, family):
    cfg = for_family(family, "manual")
    splits = data.load(cfg, tiny_root)
    total = len(splits.train) + len(splits.val) + len(splits.test)
    assert total == (120 if family == "logistic" else 600)  # 60 images per digit in the tiny set
    assert len(splits.train) == round(total * 0.6)
    for part in (splits.train, splits.val, splits.test):  # every class in proportion, within one image
        share = counts(part.y)
        for c in range(splits.n_classes):
            assert abs(share[c] - len(part) / splits.n_classes) <= 1
    assert splits.train.x.min() >= 0 and splits.train.x.max() <= 1


def test_splits_are_deterministic_per_seed(tiny_root):
    a = data.load(for_family("softmax", "manual", seed=3), tiny_root)
    b = data.load(for_family("softmax", "manual", seed=3), tiny_root)
    c = data.load(for_family("softmax", "manual", seed=4), tiny_root)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)


def test_mlp_standardised_and_tested_on_t10k(tiny_root):
    splits = data.load(for_family("mlp", "manual"), tiny_root)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (500, 100, 200)
    test_images = data.load_arrays("mnist", tiny_root)["test"][0].reshape(200, -1).float() / 255
    torch.testing.assert_close(splits.test.x, (test_images - 0.1307) / 0.3081)


def test_classes_are_remapped(tiny_root):
    splits = data.load(for_family("softmax", "manual", classes=(3, 7, 9)), tiny_root)
    assert splits.classes == (3, 7, 9) and set(splits.train.y.tolist()) == {0, 1, 2}


def test_official_protocol_tests_on_t10k(tiny_root):
    splits = data.load(for_family("logistic", "manual", protocol="official"), tiny_root)
    assert len(splits.test) == 40  # 20 zeros and 20 ones among the 200 generated t10k images
    assert len(splits.train) + len(splits.val) == 120


@pytest.mark.mnist
def test_real_mnist_split_sizes(mnist_root):
    arrays = data.load_arrays("mnist", mnist_root)
    assert arrays["train"][0].shape == (60000, 28, 28) and arrays["test"][0].shape == (10000, 28, 28)
    expected = {"logistic": (7599, 2533, 2533), "softmax": (36000, 12000, 12000), "mlp": (50000, 10000, 10000)}
    for family, sizes in expected.items():
        splits = data.load(for_family(family, "manual"), arrays=arrays)
        assert (len(splits.train), len(splits.val), len(splits.test)) == sizes
    logistic = data.load(for_family("logistic", "manual"), arrays=arrays)
    for part in (logistic.train, logistic.val, logistic.test):  # 5923 zeros : 6742 ones, kept in every split
        assert abs(float(part.y.float().mean()) - 6742 / 12665) < 1e-3
