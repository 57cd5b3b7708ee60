"""The one training loop for every iterative implementation, evaluation, and run() tying them together.

The timing model (docs/measuring.md says the same for users):
- `train_seconds` is the sum over epochs of each epoch's timed region: the epoch's shuffle (a random
  permutation and one gather into reused buffers), every update step, and the epoch's loss/accuracy
  reduction on the device. The device is synchronised at both edges of each epoch, nowhere inside.
- `eval_seconds` is the per-epoch validation (with the host read of the epoch's training loss) plus the
  final test evaluation.
- One-time costs are paid before the first timed epoch: warm_up runs steps on a throwaway model, and the
  shuffle buffers are allocated and first touched untimed. The first epoch is still reported apart
  (`first_epoch_seconds`) and left out of the steady-state figures (runtiming.epoch_figures).
Inside an epoch nothing is read back to the host: each step's loss and logits are kept as device
tensors in a list and reduced once after the epoch.
"""
from __future__ import annotations

import math
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from . import env, models, registry, runtiming
from .config import ConfigError, RunConfig

EVAL_BATCH = 8192  # evaluation is chunked only to bound memory; it does not change any metric
# A run has diverged when a loss is NaN or infinite, or when its training loss is this many times the
# loss of a uniform guess (ln C): then the weights have exploded, even if a clamp keeps the loss finite
# (the notebook's losses clamp p, so an exploded manual model can report a large but finite loss).
DIVERGENCE_FACTOR = 3.0


def has_diverged(record: dict, n_classes: int) -> bool:
    losses = (record["train_loss"], record["val_loss"])
    if not all(math.isfinite(loss) for loss in losses):
        return True
    return record["train_loss"] > DIVERGENCE_FACTOR * math.log(n_classes)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda asked for, but no CUDA device is available")
        return torch.device(name)
    raise ConfigError(f"unknown device {name!r}; choose from cpu, cuda, auto")


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def shuffle_buffers(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """Room for one shuffled copy of (x, y), allocated once per training and reused every epoch: a fresh
    copy of a 100+ MB training set each epoch costs more in page faults than the gather itself."""
    x_out, y_out = torch.empty_like(x), torch.empty_like(y)
    # first touch, untimed: an identity gather writes every page now, so the first timed epoch does not
    # pay the page faults of fresh memory (the permutation generator is not used: batches stay the same)
    identity = torch.arange(len(y), device=x.device)
    torch.index_select(x, 0, identity, out=x_out)
    torch.index_select(y, 0, identity, out=y_out)
    sync(x.device)
    return x_out, y_out


def epoch_batches(x, y, batch_size: int, generator: torch.Generator, loader: str = "tensor", buffers=None):
    """Yield (x, y) batches of one shuffled epoch.

    tensor:     one gather into a shuffled copy (into `buffers` from shuffle_buffers when given), then
                contiguous slices (views, no per-batch copies);
    dataloader: the notebook's DataLoader(TensorDataset(...), shuffle=True), collating per batch.
    Both draw the permutation from `generator` on the CPU, so batches do not depend on the device.
    """
    if loader == "dataloader":
        dataset = TensorDataset(x, y)
        yield from DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)
        return
    perm = torch.randperm(len(y), generator=generator).to(x.device, non_blocking=True)
    x_out, y_out = buffers if buffers is not None else (None, None)
    x_shuffled = torch.index_select(x, 0, perm, out=x_out)
    y_shuffled = torch.index_select(y, 0, perm, out=y_out)
    for start in range(0, len(y), batch_size):
        yield x_shuffled[start : start + batch_size], y_shuffled[start : start + batch_size]


def train_epoch(model, x, y, batch_size, generator, loader="tensor", buffers=None):
    """One pass of updates. Returns device tensors (mean loss, correct count) and the sample count.
    The batches are views of `buffers` (if given), which the next epoch overwrites: all of this epoch's
    uses of them are queued before this function returns."""
    losses, logits, labels, sizes = [], [], [], []
    for xb, yb in epoch_batches(x, y, batch_size, generator, loader, buffers):
        loss, out = model.step(xb, yb)
        losses.append(loss)
        logits.append(out)
        labels.append(yb)
        sizes.append(len(yb))
    weights = torch.tensor(sizes, dtype=torch.float32, device=x.device)
    mean_loss = (torch.stack(losses).float() * weights).sum() / weights.sum()
    correct = (models.predictions(torch.cat(logits)) == torch.cat(labels)).sum()
    return mean_loss, correct, sum(sizes)


@torch.no_grad()
def evaluate(model, split, with_predictions: bool = False) -> dict:
    """Loss (the implementation's own), accuracy and optionally predictions on a split, in eval mode."""
    model.eval()
    chunks = [model.logits(split.x[i : i + EVAL_BATCH]) for i in range(0, len(split), EVAL_BATCH)]
    logits = torch.cat(chunks)
    preds = models.predictions(logits)
    out = {
        "loss": float(model.loss(logits, split.y)),
        "acc": float((preds == split.y).float().mean()),
    }
    if with_predictions:
        out["preds"] = preds
    return out


def fit(model, splits, cfg: RunConfig, on_epoch=None) -> dict:
    """Train with per-epoch validation and optional early stopping; restore the best state if stopping.

    Returns history (one dict per epoch), best_epoch, best_val_loss, best_val_acc (both at best_epoch),
    status ("ok" | "diverged"), diverged_epoch, train_seconds, eval_seconds, samples_trained.
    """
    device = splits.train.x.device
    generator = torch.Generator().manual_seed(cfg.seed)
    history, best_state = [], None
    best = {"epoch": 0, "val_loss": math.inf, "val_acc": 0.0}
    status, diverged_epoch, since_best = "ok", None, 0
    train_seconds = eval_seconds = 0.0
    samples = 0
    buffers = shuffle_buffers(splits.train.x, splits.train.y) if cfg.loader == "tensor" else None
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        sync(device)
        started = time.perf_counter()
        mean_loss, correct, n = train_epoch(model, splits.train.x, splits.train.y, cfg.batch_size,
                                            generator, cfg.loader, buffers)
        sync(device)
        epoch_seconds = time.perf_counter() - started
        train_seconds += epoch_seconds
        samples += n

        started = time.perf_counter()
        val = evaluate(model, splits.val)
        record = {
            "epoch": epoch,
            "train_loss": float(mean_loss),  # the epoch's one host read
            "train_acc": int(correct) / n,
            "val_loss": val["loss"],
            "val_acc": val["acc"],
            "train_seconds": epoch_seconds,
            "train_samples_per_s": n / epoch_seconds if epoch_seconds > 0 else math.nan,
        }
        record["eval_seconds"] = time.perf_counter() - started
        eval_seconds += record["eval_seconds"]
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if has_diverged(record, splits.n_classes):
            status, diverged_epoch = "diverged", epoch
            break
        if record["val_loss"] < best["val_loss"]:
            best = {"epoch": epoch, "val_loss": record["val_loss"], "val_acc": record["val_acc"]}
            since_best = 0
            if cfg.patience is not None:
                best_state = model.state_dict()
        else:
            since_best += 1
            if cfg.patience is not None and since_best >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return {
        "history": history,
        "best_epoch": best["epoch"],
        "best_val_loss": best["val_loss"],
        "best_val_acc": best["val_acc"],  # the accuracy of the epoch whose weights are kept
        "status": status,
        "diverged_epoch": diverged_epoch,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "samples_trained": samples,
        "restored_best": best_state is not None,
    }


def fit_once(model, splits) -> dict:
    """Train a non-iterative implementation (scikit-learn) and describe it like an iterative run."""
    started = time.perf_counter()
    n_iter, converged = model.fit(splits.train.x, splits.train.y)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    train, val = evaluate(model, splits.train), evaluate(model, splits.val)
    eval_seconds = time.perf_counter() - started
    # a solver's fit is not an SGD epoch: its time is fit_seconds, and it has no epoch time or samples/s
    record = {
        "epoch": 1,
        "train_loss": train["loss"],
        "train_acc": train["acc"],
        "val_loss": val["loss"],
        "val_acc": val["acc"],
        "fit_seconds": fit_seconds,
        "train_seconds": None,
        "train_samples_per_s": None,
        "eval_seconds": eval_seconds,
    }
    return {
        "history": [record],
        "best_epoch": 1,
        "best_val_loss": val["loss"],
        "best_val_acc": val["acc"],
        "status": "ok",
        "diverged_epoch": None,
        "fit_seconds": fit_seconds,
        "train_seconds": None,
        "eval_seconds": eval_seconds,
        "samples_trained": len(splits.train),
        "restored_best": False,
        "solver_iterations": n_iter,
        "solver_converged": converged,
    }


def warm_up(cfg, splits, device) -> None:
    """Pay one-time costs (allocator, kernels, CUDA context) on a throwaway model before timing."""
    model = models.build(cfg, splits.n_features, splits.n_classes, device)
    if registry.implementation(cfg.family, cfg.impl).iterative:
        xb, yb = splits.train.x[: cfg.batch_size], splits.train.y[: cfg.batch_size]
        for _ in range(3):
            model.step(xb, yb)
        sync(device)


def run(cfg: RunConfig, splits, on_epoch=None) -> dict:
    """Train cfg's model on splits (already on the device) and return the measurements of the run."""
    device = splits.train.x.device
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    noise = env.noise_start()  # before any of this run's own work
    warm_up(cfg, splits, device)
    model = models.build(cfg, splits.n_features, splits.n_classes, device)
    iterative = registry.implementation(cfg.family, cfg.impl).iterative
    if iterative:
        fitted = fit(model, splits, cfg, on_epoch)
    else:
        fitted = fit_once(model, splits)
        if on_epoch is not None:
            on_epoch(fitted["history"][0])
    started = time.perf_counter()
    test = evaluate(model, splits.test, with_predictions=True)
    sync(device)  # the predictions too
    fitted["eval_seconds"] += time.perf_counter() - started
    epoch_seconds = [r["train_seconds"] for r in fitted["history"]] if iterative else []
    fitted.update(runtiming.timing_fields(epoch_seconds, len(splits.train) if iterative else None,
                                          env.noise_since(noise)))
    n_classes = splits.n_classes
    truth, preds = splits.test.y.cpu(), test.pop("preds").cpu()
    confusion = torch.bincount(truth * n_classes + preds, minlength=n_classes * n_classes)
    confusion = confusion.reshape(n_classes, n_classes)
    per_class = confusion.diagonal().double() / confusion.sum(1).clamp(min=1).double()
    fitted.update(
        test_loss=test["loss"],
        test_acc=test["acc"],
        confusion=confusion.tolist(),
        per_class_acc={str(c): float(a) for c, a in zip(splits.classes, per_class)},
        epochs_run=len(fitted["history"]) if iterative else fitted["solver_iterations"],
        split_sizes={"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
    )
    fitted["model"] = model  # for callers that want the trained weights; results.save drops it
    return fitted
