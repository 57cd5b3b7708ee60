"""The one training loop for every iterative implementation, evaluation, and run_one() tying them together.

The loop is a generator, `training()`, that does one update per item it yields, so that whoever drives
it decides what is timed: run_one() times whole epochs, interleave.py times blocks of steps of several
runs in turn. Both give the same weights, batches and histories, bit for bit.

The timing model (docs/measuring.md says the same for users):
- an epoch's `train_seconds` is its timed region: the epoch's shuffle (a random permutation and one
  gather into reused buffers), every update step, and the epoch's loss/accuracy reduction on the device.
  The device is synchronised at both edges, nowhere inside; nothing is read back to the host.
- `eval_seconds` is the per-epoch validation (with the host read of the epoch's loss) plus the test.
- One-time costs are paid before the first timed epoch: warm_up runs steps on a throwaway model, and the
  shuffle buffers are allocated and first touched untimed. The first epoch is still left out of the
  steady-state figures (runtiming.epoch_figures).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, TensorDataset

from . import env, models, registry
from .config import ConfigError, RunConfig
from .result import Epoch, RunResult, new_run_id, now

EVAL_BATCH = 8192  # evaluation is chunked only to bound memory; it does not change any metric
# A run has diverged when a loss is NaN or infinite, or when its training loss is this many times the
# loss of a uniform guess (ln C): then the weights have exploded, even if a clamp keeps the loss finite.
DIVERGENCE_FACTOR = 3.0
EPOCH_END = "epoch end"  # what training() yields after an epoch's last step: the caller stops its timer


def has_diverged(epoch: Epoch, n_classes: int) -> bool:
    losses = (epoch.train_loss, epoch.val_loss)
    if not all(loss is not None and math.isfinite(loss) for loss in losses):
        return True
    return epoch.train_loss > DIVERGENCE_FACTOR * math.log(n_classes)


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


def inputs_for(model, x: torch.Tensor) -> torch.Tensor:
    """The training inputs in the dtype the model's first product takes, if it says (input_dtype): a bf16
    model gets its training set cast once per run instead of each batch once per step (the same values:
    its first product rounds them to bf16 either way). Other models get x as it is."""
    dtype = getattr(model, "input_dtype", None)
    return x if dtype is None or dtype == x.dtype else x.to(dtype)


def shuffle_buffers(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """Room for one shuffled copy of (x, y), allocated once per training and first touched untimed (an
    identity gather writes every page), so the first timed epoch does not pay fresh memory's page faults."""
    x_out, y_out = torch.empty_like(x), torch.empty_like(y)
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
        yield from DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=generator)
        return
    perm = torch.randperm(len(y), generator=generator).to(x.device, non_blocking=True)
    x_out, y_out = buffers if buffers is not None else (None, None)
    x_shuffled = torch.index_select(x, 0, perm, out=x_out)
    y_shuffled = torch.index_select(y, 0, perm, out=y_out)
    yield from zip(x_shuffled.split(batch_size), y_shuffled.split(batch_size))  # all views made in one call


@torch.no_grad()
def evaluate(model, split, with_predictions: bool = False) -> dict:
    """Loss (the implementation's own), accuracy and optionally predictions on a split, in eval mode."""
    model.eval()
    chunks = [model.logits(split.x[i : i + EVAL_BATCH]) for i in range(0, len(split), EVAL_BATCH)]
    logits = torch.cat(chunks)
    preds = models.predictions(logits)
    out = {"loss": float(model.loss(logits, split.y)), "acc": float((preds == split.y).float().mean())}
    if with_predictions:
        out["preds"] = preds
    return out


def epoch_steps(model, x, y, batch_size, generator, loader="tensor", buffers=None):
    """One pass of updates, a generator yielding None after each step; returns device tensors (mean
    loss, correct count) and the sample count. Each step's loss and logits stay on the device, reduced
    once at the end: no host sync inside. A step that returns None for its loss leaves it to the end:
    model.loss over all the epoch's logits (the same mean, in one call). The batches are views of
    `buffers` (if given), which the next epoch overwrites: all of this epoch's uses of them are queued
    before it returns."""
    losses, logits, labels, sizes = [], [], [], []
    for xb, yb in epoch_batches(x, y, batch_size, generator, loader, buffers):
        loss, out = model.step(xb, yb)
        losses.append(loss)
        logits.append(out)
        labels.append(yb)
        sizes.append(len(yb))
        yield None
    logits, labels = torch.cat(logits), torch.cat(labels)
    if losses and losses[0] is None:  # the model's step left its loss to the loop: one call on all logits
        with torch.no_grad():
            mean_loss = model.loss(logits, labels)
    else:
        weights = torch.tensor(sizes, dtype=torch.float32, device=x.device)
        mean_loss = (torch.stack(losses).float() * weights).sum() / weights.sum()
    correct = (models.predictions(logits) == labels).sum()
    return mean_loss, correct, sum(sizes)


def train_epoch(model, x, y, batch_size, generator, loader="tensor", buffers=None):
    """epoch_steps run to its end (speed and throughput time exactly this): (mean loss, correct, n)."""
    steps = epoch_steps(model, x, y, batch_size, generator, loader, buffers)
    try:
        while True:
            next(steps)
    except StopIteration as stop:
        return stop.value


@dataclass(frozen=True)
class Fitted:
    """What training() returns when it stops: the epochs, which one's weights are kept, and why it stopped."""

    history: tuple[Epoch, ...]
    best_epoch: int
    restored_best: bool
    status: str  # "ok" | "diverged"
    eval_seconds: float


def training(model, splits, cfg: RunConfig):
    """Train with per-epoch validation and optional early stopping; restore the best state if stopping.

    A generator: yields None after each update; after an epoch's last update (and the device-side
    reduction of its loss and accuracy) it yields EPOCH_END, and the caller sends back the epoch's
    timed seconds; it then validates and yields the epoch's Epoch. Returns a Fitted (StopIteration.value).
    """
    x, y = inputs_for(model, splits.train.x), splits.train.y
    generator = torch.Generator().manual_seed(cfg.seed)
    buffers = shuffle_buffers(x, y) if cfg.loader == "tensor" else None
    history, best_state, best_epoch, best_loss, since_best = [], None, 0, math.inf, 0
    status, eval_seconds = "ok", 0.0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        mean_loss, correct, n = yield from epoch_steps(model, x, y, cfg.batch_size, generator, cfg.loader, buffers)
        train_seconds = yield EPOCH_END

        started = time.perf_counter()
        val = evaluate(model, splits.val)
        record = Epoch(epoch=epoch, train_loss=_finite(float(mean_loss)), train_acc=int(correct) / n,
                       val_loss=_finite(val["loss"]), val_acc=val["acc"], train_seconds=train_seconds,
                       eval_seconds=time.perf_counter() - started)
        eval_seconds += record.eval_seconds
        history.append(record)
        # decided before yielding the epoch: the next item the caller asks for is the next epoch's
        # first step, inside its timer
        stop = has_diverged(record, splits.n_classes)
        if stop:
            status = "diverged"
        elif record.val_loss < best_loss:
            best_epoch, best_loss, since_best = epoch, record.val_loss, 0
            if cfg.patience is not None:
                best_state = model.state_dict()
        else:
            since_best += 1
            stop = cfg.patience is not None and since_best >= cfg.patience
        yield record
        if stop:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return Fitted(tuple(history), best_epoch, best_state is not None, status, eval_seconds)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN: a diverged loss is recorded as null


def timed_epochs(model, splits, cfg: RunConfig):
    """Drive training() an epoch at a time, timing each between device syncs. Yields each Epoch, and last
    the Fitted."""
    device = splits.train.x.device
    steps = training(model, splits, cfg)
    try:
        while True:
            sync(device)
            started = time.perf_counter()
            while next(steps) is not EPOCH_END:
                pass
            sync(device)
            yield steps.send(time.perf_counter() - started)
    except StopIteration as stop:
        yield stop.value


def fit_once(model, splits) -> tuple[Fitted, int, bool]:
    """Train a non-iterative implementation (scikit-learn) in one call; describe it as one epoch whose
    time is fit_seconds (a solver's fit is not an SGD epoch: no epoch time, no samples/s)."""
    started = time.perf_counter()
    n_iter, converged = model.fit(splits.train.x, splits.train.y)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    train, val = evaluate(model, splits.train), evaluate(model, splits.val)
    eval_seconds = time.perf_counter() - started
    epoch = Epoch(1, train["loss"], train["acc"], val["loss"], val["acc"], None, eval_seconds, fit_seconds)
    return Fitted((epoch,), 1, False, "ok", eval_seconds), n_iter, converged


def warm_up(cfg, splits, device, steps: int = 3):
    """Pay one-time costs (allocator, kernels, CUDA context) on a throwaway model before timing; returns
    the fastest of its steps after the first, in seconds (interleave.py calibrates its blocks from it)."""
    model = models.build(cfg, splits.n_features, splits.n_classes, device)
    if not registry.implementation(cfg.family, cfg.impl).iterative:
        return None
    xb, yb = inputs_for(model, splits.train.x[: cfg.batch_size]), splits.train.y[: cfg.batch_size]
    seconds = []
    for _ in range(steps):
        sync(device)
        started = time.perf_counter()
        model.step(xb, yb)
        sync(device)
        seconds.append(time.perf_counter() - started)
    return min(seconds[1:] or seconds)


def finish(cfg: RunConfig, model, splits, fitted: Fitted, noise: dict, solver=(None, None), **extra) -> RunResult:
    """The RunResult of a trained model: its test metrics and confusion matrix, with what was measured."""
    device = splits.train.x.device
    started = time.perf_counter()
    test = evaluate(model, splits.test, with_predictions=True)
    truth, preds = splits.test.y.cpu(), test["preds"].cpu()  # the .cpu() waits for the device
    test_seconds = time.perf_counter() - started
    n = splits.n_classes
    confusion = torch.bincount(truth * n + preds, minlength=n * n).reshape(n, n).tolist()
    return RunResult(
        config=cfg, status=fitted.status, run_id=new_run_id(cfg), created=now(), history=fitted.history,
        best_epoch=fitted.best_epoch, restored_best=fitted.restored_best,
        eval_seconds=fitted.eval_seconds + test_seconds, test_loss=_finite(test["loss"]), test_acc=test["acc"],
        confusion=tuple(map(tuple, confusion)),
        split_sizes={"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        solver_iterations=solver[0], solver_converged=solver[1], noise=noise, env=env.environment(device),
        **extra)


def use_threads(count: int) -> None:
    """torch's intra-op thread count, set only when it changes: setting it rebuilds the thread pool,
    which costs more than a block of small steps (interleave.py switches it every block)."""
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


def run_events(cfg: RunConfig, splits):
    """Train cfg's model on splits (already on the device): yields each Epoch as it ends, then the
    RunResult. torch's thread count is cfg.threads during the run and restored after."""
    device = splits.train.x.device
    threads = torch.get_num_threads()
    try:
        if cfg.threads is not None:
            use_threads(cfg.threads)
        noise = env.noise_start()  # before any of this run's own work
        warm_up(cfg, splits, device)
        model = models.build(cfg, splits.n_features, splits.n_classes, device)
        if registry.implementation(cfg.family, cfg.impl).iterative:
            for item in timed_epochs(model, splits, cfg):
                if isinstance(item, Fitted):
                    yield finish(cfg, model, splits, item, env.noise_since(noise))
                else:
                    yield item
        else:
            fitted, n_iter, converged = fit_once(model, splits)
            yield fitted.history[0]
            yield finish(cfg, model, splits, fitted, env.noise_since(noise), solver=(n_iter, converged))
    finally:
        use_threads(threads)


def run_one(cfg: RunConfig, splits) -> RunResult:
    """Train one run and return its result (run_events without the epochs)."""
    for item in run_events(cfg, splits):
        result = item
    return result
