"""The notebook's own training loops, re-written from the original study, for timing only (so this module
names the notebook's families; a family without a loop here is skipped by `mnistbench speed`).

`mnistbench speed` times these against mnistbench's loop on the same data and the same math, so they
keep everything the notebook paid for per batch:
- logistic and softmax: DataLoader(TensorDataset(X_train, y_train), batch_size=64, shuffle=True), which
  indexes and collates one sample at a time; the loss through autograd (manual) or torch.nn + optim.SGD
  (builtin); `.item()` on the loss and on the correct count after every batch;
- mlp: torchvision.datasets.MNIST with Compose([ToTensor(), Normalize((0.1307,), (0.3081,))]), i.e. a PIL
  image and two transforms per sample, random_split 50000/10000, DataLoader(batch_size=64, shuffle=True);
  the notebook's ManualFeedForward (an nn.Module, so its forward pass records an autograd graph it never
  uses), its hand-written backward that stores each gradient in `.grad`, and `.item()` twice a batch.
Every batch is moved to the device (`.to(device)`), as the notebook's MLP loop did; on the CPU a no-op.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import init
from torch.utils.data import DataLoader, TensorDataset, random_split

from ..catalog.mlp import MEAN as MLP_MEAN
from ..catalog.mlp import STD as MLP_STD
from ..data import TORCHVISION_CLASS, DataError
from ..train import sync

EPS = 1e-15  # the notebook's clamp in both linear losses

# which of the notebook's loops does the same math as an implementation (the notebook has no builtin MLP:
# its one MLP loop is the manual one, so that is the reference for both MLP implementations)
LOOP_FOR_IMPL = {"manual": "manual", "handgrad": "manual", "builtin": "builtin"}
LOOPS = {("logistic", "manual"), ("logistic", "builtin"), ("softmax", "manual"), ("softmax", "builtin"),
         ("mlp", "manual")}


def has_loop(family: str) -> bool:
    """Whether the notebook has a loop for this family (a plugin's family has none)."""
    return any(f == family for f, _ in LOOPS)


def loop_for(family: str, impl: str) -> str:
    loop = LOOP_FOR_IMPL.get(impl, "manual")
    return loop if (family, loop) in LOOPS else "manual"


@dataclass
class Tally:
    """The notebook's per-epoch bookkeeping, kept in Python numbers as it did."""

    loss_sum: float = 0.0
    correct: int = 0
    total: int = 0
    batches: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else float("nan")


# ---------------------------------------------------------------- the notebook's math
def sigmoid(z):
    return 1 / (1 + torch.exp(-z))


def binary_cross_entropy(y_hat, y):
    y_hat = torch.clamp(y_hat, EPS, 1 - EPS)
    return -torch.mean(y * torch.log(y_hat) + (1 - y) * torch.log(1 - y_hat))


def softmax(z):
    exp_z = torch.exp(z - torch.max(z, dim=1, keepdim=True).values)
    return exp_z / exp_z.sum(dim=1, keepdim=True)


def cross_entropy_loss(y_hat, y_true, n_classes):
    y_hat = torch.clamp(y_hat, EPS, 1 - EPS)
    one_hot = torch.nn.functional.one_hot(y_true, num_classes=n_classes).float()
    return -torch.mean(torch.sum(one_hot * torch.log(y_hat), dim=1))


class ManualFeedForward(nn.Module):
    """The notebook's MLP: nn.Linear layers, Kaiming-uniform hidden, Xavier-uniform last, zero biases."""

    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
        for i, layer in enumerate(self.layers):
            if i < len(self.layers) - 1:
                init.kaiming_uniform_(layer.weight, nonlinearity="relu")
            else:
                init.xavier_uniform_(layer.weight)
            init.zeros_(layer.bias)

    def forward(self, x):
        if x.dim() > 2:
            x = x.view(x.size(0), -1)
        self.activations, self.z_values = [x], []
        out = x
        for i, layer in enumerate(self.layers):
            z = out @ layer.weight.T + layer.bias
            self.z_values.append(z)
            out = torch.relu(z) if i < len(self.layers) - 1 else z
            self.activations.append(out)
        return out

    def manual_backward(self, y_true, lr) -> float:
        batch_size = y_true.size(0)
        logits = self.activations[-1]
        exp_logits = torch.exp(logits - logits.max(dim=1, keepdim=True)[0])
        probs = exp_logits / exp_logits.sum(dim=1, keepdim=True)
        y_onehot = torch.zeros_like(probs, device=probs.device)
        y_onehot[torch.arange(batch_size, device=probs.device), y_true] = 1.0
        loss = -torch.sum(y_onehot * torch.log(probs + 1e-9)) / batch_size
        delta = (probs - y_onehot) / batch_size
        for i in reversed(range(len(self.layers))):
            self.layers[i].weight.grad = delta.T @ self.activations[i]
            self.layers[i].bias.grad = delta.sum(dim=0)
            if i > 0:
                delta = delta @ self.layers[i].weight
                delta = delta * (self.z_values[i - 1] > 0)
        with torch.no_grad():
            for layer in self.layers:
                layer.weight -= lr * layer.weight.grad
                layer.bias -= lr * layer.bias.grad
        return loss.item()


# ---------------------------------------------------------------- one batch, the notebook's way
def _logistic_manual(n_features, n_classes, lr, device):
    W = torch.zeros((n_features, 1), requires_grad=True, device=device)
    b = torch.zeros(1, requires_grad=True, device=device)

    def step(X_batch, y_batch, tally):
        y_pred = sigmoid(X_batch @ W + b)
        loss = binary_cross_entropy(y_pred, y_batch.unsqueeze(1).float())
        loss.backward()
        with torch.no_grad():
            W.sub_(lr * W.grad)  # the notebook's `W -= learning_rate * W.grad`
            b.sub_(lr * b.grad)
        W.grad.zero_()
        b.grad.zero_()
        tally.loss_sum += loss.item()
        preds = (y_pred > 0.5).int().squeeze()
        tally.correct += (preds == y_batch).sum().item()
        tally.total += y_batch.size(0)

    step.params = {"W": W, "b": b}  # the live parameters, for tests that compare the math
    return step


def _logistic_builtin(n_features, n_classes, lr, device):
    model = nn.Linear(n_features, 1).to(device)
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def step(X_batch, y_batch, tally):  # the notebook's labels here are float32
        optimizer.zero_grad()
        outputs = model(X_batch).squeeze()
        loss = criterion(outputs, y_batch)
        loss.backward()
        optimizer.step()
        tally.loss_sum += loss.item()
        preds = (torch.sigmoid(outputs) > 0.5).int()
        tally.correct += (preds == y_batch.int()).sum().item()
        tally.total += y_batch.size(0)

    step.params = dict(model.named_parameters())
    return step


def _softmax_manual(n_features, n_classes, lr, device):
    W = torch.zeros((n_features, n_classes), requires_grad=True, device=device)
    b = torch.zeros(n_classes, requires_grad=True, device=device)

    def step(X_batch, y_batch, tally):
        y_pred = softmax(X_batch @ W + b)
        loss = cross_entropy_loss(y_pred, y_batch, n_classes)
        loss.backward()
        with torch.no_grad():
            W.sub_(lr * W.grad)
            b.sub_(lr * b.grad)
        W.grad.zero_()
        b.grad.zero_()
        tally.loss_sum += loss.item()
        preds = y_pred.argmax(dim=1)
        tally.correct += (preds == y_batch).sum().item()
        tally.total += y_batch.size(0)

    step.params = {"W": W, "b": b}
    return step


def _softmax_builtin(n_features, n_classes, lr, device):
    model = nn.Sequential(nn.Linear(n_features, n_classes)).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def step(X_batch, y_batch, tally):
        outputs = model(X_batch)
        loss = criterion(outputs, y_batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tally.loss_sum += loss.item()
        preds = outputs.argmax(dim=1)
        tally.correct += (preds == y_batch).sum().item()
        tally.total += y_batch.size(0)

    step.params = dict(model.named_parameters())
    return step


def _mlp_manual(sizes, lr, device):
    model = ManualFeedForward(sizes).to(device)

    def step(X, y, tally):  # the notebook's train_manual, one batch
        logits = model.forward(X)
        loss = model.manual_backward(y, lr)
        preds = logits.argmax(dim=1)
        tally.correct += (preds == y).sum().item()
        tally.loss_sum += loss * X.size(0)
        tally.total += X.size(0)

    step.params = dict(model.named_parameters())
    return step


STEPS = {("logistic", "manual"): _logistic_manual, ("logistic", "builtin"): _logistic_builtin,
         ("softmax", "manual"): _softmax_manual, ("softmax", "builtin"): _softmax_builtin}


# ---------------------------------------------------------------- loaders and the epoch
def mlp_dataset(root, seed: int, dataset: str = "mnist"):
    """The notebook's MLP training set: torchvision's dataset with per-sample transforms, random_split.

    random_split draws randperm(60000) from the generator, exactly as data.split does for the MLP, so
    with the same seed both hold the same 50000 images in the same order.
    """
    import torchvision
    from torchvision import transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MLP_MEAN,), (MLP_STD,))])
    cls = getattr(torchvision.datasets, TORCHVISION_CLASS[dataset])
    try:
        full = cls(str(root), train=True, download=False, transform=transform)
    except RuntimeError as exc:  # torchvision wants the uncompressed files under <root>/<Class>/raw/
        raise DataError(f"the notebook's MLP loop reads {root} through torchvision and failed: "
                        f"{str(exc).splitlines()[0]} (it needs the uncompressed IDX files)") from None
    n_val = round(len(full) / 6)
    train_ds, _ = random_split(full, [len(full) - n_val, n_val], generator=torch.Generator().manual_seed(seed))
    return train_ds


def linear(family, loop, train_x, train_y, n_classes, lr, batch_size, seed, device):
    """(step, loader) for the notebook's `loop` ("manual" | "builtin") of logistic or softmax regression,
    over the training tensors (kept on the CPU, as the notebook kept them)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # nn.Linear's default initialisation in the builtin loops
    labels = train_y.float() if (family, loop) == ("logistic", "builtin") else train_y  # as the notebook's
    loader = DataLoader(TensorDataset(train_x.cpu(), labels.cpu()), batch_size=batch_size, shuffle=True,
                        generator=generator)
    return STEPS[(family, loop)](train_x.shape[1], n_classes, lr, device), loader


def for_family(family, loop, splits, cfg, data_root, device):
    """(step, loader) of the notebook's `loop` for `family`, at cfg's lr, batch size, seed and hidden sizes."""
    if family == "mlp":  # reads the image files itself, through torchvision, as the notebook did
        sizes = [splits.n_features, *cfg.hidden, splits.n_classes]
        return mlp(data_root, sizes, cfg.lr, cfg.batch_size, cfg.seed, device, cfg.dataset)
    return linear(family, loop, splits.train.x, splits.train.y, splits.n_classes, cfg.lr, cfg.batch_size,
                  cfg.seed, device)


def mlp(root, sizes, lr, batch_size, seed, device, dataset="mnist"):
    """(step, loader) for the notebook's MLP loop, reading the images from `root` through torchvision."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the notebook's unseeded kaiming/xavier draws, made repeatable
    loader = DataLoader(mlp_dataset(root, seed, dataset), batch_size=batch_size, shuffle=True,
                        generator=generator)
    return _mlp_manual(sizes, lr, device), loader


def epoch(step, loader, device, max_batches: int | None = None):
    """One notebook epoch (or its first max_batches batches). Returns (seconds, Tally)."""
    tally = Tally()
    sync(device)
    started = time.perf_counter()
    for X_batch, y_batch in loader:
        if max_batches is not None and tally.batches >= max_batches:
            break
        step(X_batch.to(device), y_batch.to(device), tally)
        tally.batches += 1
    sync(device)
    return time.perf_counter() - started, tally
