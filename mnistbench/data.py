"""MNIST-format data: find or download the IDX files, decode them once into tensors, split as the notebook.

torchvision's dataset classes fetch the files and fix the on-disk layout (`<root>/MNIST/raw/...`);
decoding is done here, strictly, so a truncated or mislabelled file is reported by name instead of
failing somewhere inside a training loop. No per-sample PIL transforms: a whole set is one tensor.
"""
from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import files, registry
from .config import ConfigError, RunConfig

# dataset name -> torchvision class name (also the folder under the root)
TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# IDX element types; multi-byte ones are big-endian on disk (read_idx returns native byte order)
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_BYTES = 2**33  # 8 GiB: far above any MNIST-format set; a header claiming more is corrupt
MIN_PER_CLASS = 5  # the stratified 60/20/20 split needs a few images of every class in each part


class DataError(ConfigError, RuntimeError):
    """Data that cannot be found, read or used (a subclass of ConfigError, and a RuntimeError as it
    always was): the CLI prints it as one line naming the file and exits 2."""


@dataclass
class Split:
    x: torch.Tensor  # (N, n_features) float32
    y: torch.Tensor  # (N,) int64, labels remapped to 0..n_classes-1

    def __len__(self) -> int:
        return self.y.shape[0]

    def to(self, device) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    classes: tuple[int, ...]

    @property
    def n_features(self) -> int:
        return self.train.x.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def default_root() -> Path:
    """$MNISTBENCH_DATA, else a per-user cache (where torchvision downloads on a connected machine)."""
    env = files.env_value("MNISTBENCH_DATA")
    if env:
        return files.user_path(env, "MNISTBENCH_DATA")
    cache = files.env_value("XDG_CACHE_HOME")  # empty means unset, as the XDG spec says
    try:
        return Path(cache or Path.home() / ".cache") / "mnistbench"
    except RuntimeError:  # no home directory to be found
        raise DataError("no data folder: set MNISTBENCH_DATA or pass --data-root (no home directory "
                        "for the download cache)") from None


def read_idx(path: Path) -> np.ndarray:
    """Decode one IDX file (plain or .gz) into an array in native byte order, checking magic number and
    length; DataError naming the file for anything else."""
    path = Path(path)
    try:
        if not path.is_file():  # a folder or a named pipe: never opened, never waited on
            raise OSError(f"{path} is not a regular file")
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as handle:
            raw = handle.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES or not 1 <= raw[3] <= 4:
        raise DataError(f"{path} is not an IDX file (wrong magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: header cut short")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{path} is {kind}: {len(raw)} bytes, header implies {expected}")
    array = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)  # torch reads native byte order only


def _pixels(images: np.ndarray, path: Path) -> np.ndarray:
    """Images as uint8: an IDX file of another element type must hold whole values 0-255."""
    if images.dtype == np.uint8:
        return images
    with np.errstate(invalid="ignore"):
        valid = images.size == 0 or (np.isfinite(images).all() and images.min() >= 0 and images.max() <= 255
                                     and (images == np.round(images)).all())
    if not valid:
        raise DataError(f"{path} holds pixel values other than whole numbers 0-255 ({images.dtype})")
    return images.astype(np.uint8)


def _labels(labels: np.ndarray, path: Path) -> np.ndarray:
    """Labels as int64 digits 0-9, whatever the IDX element type."""
    with np.errstate(invalid="ignore"):
        valid = labels.size == 0 or (np.isfinite(labels).all() and (labels == np.round(labels)).all()
                                     and labels.min() >= 0 and labels.max() <= 9)
    if not valid:
        raise DataError(f"{path} has labels other than the digits 0-9")
    return labels.astype(np.int64)


def _find(raw_dir: Path, name: str) -> Path | None:
    for candidate in (raw_dir / name, raw_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _download(dataset: str, root: Path) -> None:
    try:
        import torchvision.datasets as tv_datasets

        cls = getattr(tv_datasets, TORCHVISION_CLASS[dataset])
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # no network, no torchvision, a refused mirror: one message either way
        raise DataError(f"download of {dataset} into {root} failed ({_reason(exc)}). Without internet, copy "
                        f"the four IDX files into {root / TORCHVISION_CLASS[dataset] / 'raw'}, or point "
                        f"--data-root or MNISTBENCH_DATA at a folder holding "
                        f"{TORCHVISION_CLASS[dataset]}/raw/") from None


def _reason(exc: Exception) -> str:
    """The informative part of a download error: torchvision's message starts with a line ending in ':'
    and names each mirror's failure on the lines after it; keep the last failure."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = [line for line in lines if not line.endswith(":")]
    return (detail[-1] if detail else lines[0] if lines else type(exc).__name__).strip("<>")


def load_arrays(dataset: str = "mnist", root: Path | str | None = None, download: bool | None = None):
    """Return {"train": (images uint8 N×28×28, labels int64 N), "test": (...)} as torch tensors.

    Downloads (through torchvision) only into the default cache, or when download=True: a folder the
    user named is read as it is, so a typo gives an error instead of a surprise download.
    """
    if dataset not in TORCHVISION_CLASS:
        raise DataError(f"unknown dataset {dataset!r}; choose from {', '.join(TORCHVISION_CLASS)}")
    explicit = root is not None or files.env_value("MNISTBENCH_DATA") is not None
    root = files.user_path(root, "--data-root") if root is not None else default_root()
    if explicit and not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    raw_dir = root / TORCHVISION_CLASS[dataset] / "raw"
    names = FILES["train"] + FILES["test"]
    if any(_find(raw_dir, n) is None for n in names):
        if download if download is not None else not explicit:
            _download(dataset, root)
        missing = [n for n in names if _find(raw_dir, n) is None]
        if missing:
            raise DataError(
                f"{dataset} files missing in {raw_dir}: expected {', '.join(names)} "
                f"(plain or .gz); missing {', '.join(missing)}. Point --data-root or MNISTBENCH_DATA at a "
                f"folder holding {TORCHVISION_CLASS[dataset]}/raw/"
            )
    out = {}
    for part, (image_name, label_name) in FILES.items():
        image_path, label_path = _find(raw_dir, image_name), _find(raw_dir, label_name)
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3:
            raise DataError(f"{image_path} holds a {images.ndim}-d array, expected N×rows×cols images")
        if labels.ndim != 1:
            raise DataError(f"{label_path} holds a {labels.ndim}-d array, expected N labels")
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{image_path} has {images.shape[0]} images but {label_path} has {labels.shape[0]} labels"
            )
        if images.shape[0] == 0:
            raise DataError(f"{image_path} holds no images")
        if images.shape[1] < 1 or images.shape[2] < 1:
            raise DataError(f"{image_path} holds images of size {images.shape[1]}×{images.shape[2]}")
        out[part] = (torch.from_numpy(_pixels(images, image_path).copy()),
                     torch.from_numpy(_labels(labels, label_path)))
    (train_images, _), (test_images, _) = out["train"], out["test"]
    if train_images.shape[1:] != test_images.shape[1:]:
        sizes = ["×".join(map(str, t.shape[1:])) for t in (train_images, test_images)]
        raise DataError(f"the test images in {raw_dir} are {sizes[1]} but the training images are {sizes[0]}; "
                        "both sets must have one image size")
    return out


def check_usable(arrays: dict, cfg: RunConfig) -> None:
    """DataError when cfg's classes cannot be split from these arrays (absent, or too few images of one);
    cheap, so a grid can check every configuration before training any."""
    classes = cfg.class_list
    counts = torch.bincount(arrays["train"][1], minlength=10)
    missing = [c for c in classes if counts[c] == 0]
    if len(missing) == len(classes):
        raise DataError(f"none of the classes {list(classes)} has an image in the {cfg.dataset} training set")
    if missing:
        raise DataError(f"the {cfg.dataset} training set has no image of class(es) {missing}")
    recipe = registry.family(cfg.family).recipe
    few = [c for c in classes if counts[c] < MIN_PER_CLASS]
    if few and cfg.protocol == "seed" and recipe.split == "stratified":
        raise DataError(f"the {cfg.dataset} training set has fewer than {MIN_PER_CLASS} images of class(es) "
                        f"{few}: too few for a stratified train/validation/test split")
    if not (torch.isin(arrays["test"][1], torch.tensor(classes))).any() and (
            cfg.protocol == "official" or recipe.split != "stratified"):
        raise DataError(f"the {cfg.dataset} test set has no image of the classes {list(classes)}")


def _select(images, labels, classes, standardize: tuple[float, float] | None) -> Split:
    """Keep `classes`, flatten, scale to [0, 1] (then standardise with (mean, std) if given), remap labels
    to 0..k-1."""
    lookup = torch.full((10,), -1, dtype=torch.int64)
    lookup[list(classes)] = torch.arange(len(classes))
    keep = lookup[labels] >= 0
    x = images[keep].reshape(int(keep.sum()), -1).to(torch.float32).div_(255.0)
    if standardize is not None:
        mean, std = standardize
        x.sub_(mean).div_(std)
    return Split(x, lookup[labels[keep]])


def _stratified_three_way(y: torch.Tensor, seed: int):
    """The notebook's split: train_test_split(test_size=0.4, stratify) then halves of the rest."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    labels = y.numpy()
    train, rest = train_test_split(index, test_size=0.4, stratify=labels, random_state=seed)
    val, test = train_test_split(rest, test_size=0.5, stratify=labels[rest], random_state=seed)
    return train, val, test


def _random_two_way(n: int, seed: int):
    """The notebook's MLP split: random_split(60000 -> 50000/10000), i.e. a random sixth held out."""
    n_val = round(n / 6)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return perm[: n - n_val], perm[n - n_val :]


def split(arrays: dict, cfg: RunConfig) -> Splits:
    """Build train/val/test for cfg's family recipe and protocol, on the CPU (move with Split.to)."""
    check_usable(arrays, cfg)
    classes = cfg.class_list
    recipe = registry.family(cfg.family).recipe
    pool = _select(*arrays["train"], classes, recipe.standardize)
    take = lambda idx: Split(pool.x[torch.as_tensor(idx)], pool.y[torch.as_tensor(idx)])
    if cfg.protocol == "seed" and recipe.split == "stratified":
        try:
            train_idx, val_idx, test_idx = _stratified_three_way(pool.y, cfg.seed)
        except ValueError as exc:  # scikit-learn: a class too small to stratify
            raise DataError(f"classes {list(classes)} of {cfg.dataset} cannot be split 60/20/20: {exc}") from None
        return Splits(take(train_idx), take(val_idx), take(test_idx), classes)
    # a holdout recipe (the MLP's), and every family under the official protocol, test on t10k
    train_idx, val_idx = _random_two_way(len(pool), cfg.seed)
    test = _select(*arrays["test"], classes, recipe.standardize)
    return Splits(take(train_idx), take(val_idx), test, classes)


def load(cfg: RunConfig, root=None, device="cpu", arrays: dict | None = None) -> Splits:
    """Splits for cfg on `device`. Pass `arrays` (from load_arrays) to reuse one decode across runs."""
    arrays = arrays if arrays is not None else load_arrays(cfg.dataset, root)
    splits = split(arrays, cfg)
    if len(splits.train) == 0 or len(splits.val) == 0 or len(splits.test) == 0:
        raise DataError(f"classes {list(cfg.class_list)} leave an empty split in {cfg.dataset}")
    return Splits(splits.train.to(device), splits.val.to(device), splits.test.to(device), splits.classes)
