"""Feed-forward ReLU network 784-512-128-10 (hidden sizes configurable).

manual:  the notebook's ManualFeedForward: Kaiming-uniform (ReLU) hidden weights, Xavier-uniform last
         layer, zero biases; the forward pass caches pre-activations and activations; the backward pass
         is written by hand (softmax-CE delta, ReLU masks), no autograd; SGD by hand.
builtin: the same layers in nn.Sequential, CrossEntropyLoss, autograd and optim.SGD, initialised
         from the same generator so that both start from identical weights.
With --dtype bfloat16 (models.precision) the manual model runs the products of its hidden layers, forward
and backward, in bf16 on bf16 copies of its float32 master weights (one cast per weight per update; the
training set cast once per run; activations and hidden deltas kept in bf16) and its 10-wide output layer,
softmax and loss in float32 (BF16_MIN_OUTPUTS says why); the builtin one runs under torch.autocast.
The family (defaults, data recipe, layer_sizes) is declared in mnistbench.catalog.mlp.
"""
from __future__ import annotations

import torch
from torch import nn

from ..catalog.mlp import layer_sizes
from . import precision
from .common import Builtin, TensorParams

# In a bf16 run a layer with fewer outputs than this (the classifier's 10) computes in float32: its products
# are ~1 % of the step's FLOPs, and on oneDNN each bf16 product costs a fixed ~30 µs (AMX Xeon, batch 64),
# against ~5 µs for the same product in float32.
BF16_MIN_OUTPUTS = 16
# the ReLU mask's backward into a given buffer (no torch.* function offers the out= form); looked up once
threshold_backward_ = torch.ops.aten.threshold_backward.grad_input


def init_linear_(weight: torch.Tensor, bias: torch.Tensor, last: bool, generator) -> None:
    """The notebook's initialisation; drawing from `generator` makes manual and builtin identical."""
    with torch.no_grad():
        if last:
            nn.init.xavier_uniform_(weight, generator=generator)
        else:
            nn.init.kaiming_uniform_(weight, nonlinearity="relu", generator=generator)
        bias.zero_()


def affine(left, right, bias, exact: bool, out=None):
    """left·right + b: a hidden layer as a·Wᵀ + b, the classifier transposed as W·aᵀ + b (b a column). In
    float32 mm then add_: measured a little faster than addmm, which first copies b into every row of the
    output; in bf16 addmm, which adds b before the product is rounded to bf16."""
    if exact:
        return torch.mm(left, right, out=out).add_(bias)
    return torch.addmm(bias, left, right, out=out)


def views(weight, bias, classifier: bool) -> tuple:
    """A layer as the products take it: (W, Wᵀ, b, b as a column for the classifier's W·aᵀ + b, else None)."""
    return weight, weight.t(), bias, bias.unsqueeze(1) if classifier else None


class ManualMLP(TensorParams):
    """The step does the notebook's arithmetic (within the twin's tolerance: sums may run in another
    order), with the plumbing cut: hidden activations and deltas go into buffers kept per batch shape,
    ReLU and its mask run in place (one pass each), the classifier is computed transposed (classes,
    batch), so that its softmax runs along contiguous rows and its delta comes out as the δᵀ the updates
    take, each float32 update is one BLAS call into the master (addmm_ for W, addmv_ with a ones vector
    for b), and the transposed views are made once (at batch 64 each op costs a few µs, and more inside a
    step than alone, beside ~50–300 µs for each large product). The step leaves its loss to the loop
    (returns None): the loop takes the epoch's training loss from the logits it keeps, by loss(), in one
    call. In bf16 the products take bf16 copies of the weights (one cast per weight per update,
    models.precision.Copies), the training set comes cast once per run (input_dtype), and a layer
    narrower than BF16_MIN_OUTPUTS stays float32."""

    def __init__(self, sizes: list[int], lr: float, generator, prec=precision.FLOAT32):
        self.lr, self.prec = lr, prec
        self.params = {}
        n_layers = len(sizes) - 1
        for i in range(n_layers):
            weight = torch.empty(sizes[i + 1], sizes[i])  # (out, in), as nn.Linear stores it
            bias = torch.empty(sizes[i + 1])
            init_linear_(weight, bias, last=i == n_layers - 1, generator=generator)
            self.params[f"{2 * i}.weight"] = weight  # the names nn.Sequential gives its Linear layers
            self.params[f"{2 * i}.bias"] = bias
        self.to("cpu")

    @property
    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(self._layers)

    @property
    def input_dtype(self) -> torch.dtype:
        """The dtype the first product takes: the training loop casts the training set to it once per run
        (train.inputs_for), so a bf16 step need not cast its batch."""
        return self._dtypes[0]

    def _compute_layers(self):
        """views() of each layer as the products take it: the masters where the layer computes in float32
        (made once: the updates are in place), bf16 copies else."""
        if self.prec.exact:
            return self._master_layers
        get = self.copies.get
        last = len(self._master_layers) - 1
        return [master if exact else views(get(master[0]), get(master[2]), i == last)
                for i, (master, exact) in enumerate(zip(self._master_layers, self._exact))]

    def _buffers(self, x):
        """Per-batch-shape work tensors: each hidden layer's activation and delta (in the dtype of the layer
        that writes it) and the delta's transposed view and, for a bf16 layer, its gradient buffers. A
        step's returned logits are fresh."""
        key = x.shape[0]  # the device is the model's (to() starts the buffers afresh)
        bufs = self._bufs.get(key)
        if bufs is None:
            batch, device, dtypes = x.shape[0], x.device, self._dtypes
            outs = [weight.shape[0] for weight, _ in self._layers]
            deltas = [torch.empty(batch, o, dtype=dtypes[i + 1], device=device) for i, o in enumerate(outs[:-1])]
            bufs = {"hidden": [torch.empty(batch, o, dtype=dtypes[i], device=device)
                               for i, o in enumerate(outs[:-1])],
                    "delta": deltas, "delta_t": [delta.t() for delta in deltas],
                    # bf16 layers only: the bias gradient, the weight-gradient product and its float32
                    # widening (a float32 layer adds both straight into its masters)
                    "bias_grad": [None if exact else torch.empty(o, dtype=dtype, device=device)
                                  for o, exact, dtype in zip(outs, self._exact, dtypes)],
                    "weight_grad": [None if exact else (torch.empty_like(weight, dtype=dtype),
                                                        torch.empty_like(weight))
                                    for (weight, _), exact, dtype in zip(self._layers, self._exact, dtypes)],
                    "minus_one": torch.full((1, batch), -1.0, device=device),
                    "ones": torch.ones(batch, device=device)}
            self._bufs = {key: bufs}  # one batch shape at a time (the epoch's last batch may differ)
        return bufs

    def _forward(self, x, layers, hidden=None):
        """The layers' outputs from a batch: each layer's input in its compute dtype (the batch cast once, a
        float32 layer after a bf16 one widens its input), ReLU in place after every layer but the last,
        the last transposed. Returns (each layer's input, the logits transposed: (classes, batch))."""
        inputs, out, last = [], x, len(layers) - 1
        for i, (weight, weight_t, bias, bias_column) in enumerate(layers):
            if out.dtype != self._dtypes[i]:
                out = out.to(self._dtypes[i])
            inputs.append(out)
            if i == last:  # W·aᵀ + b: 64 rows of 10 take softmax ~3× as long as 10 rows of 64 (AMX Xeon)
                return inputs, affine(weight, out.t(), bias_column, self._exact[i])
            buffer = hidden[i] if hidden is not None else None
            out = affine(out, weight_t, bias, self._exact[i], out=buffer).relu_()

    def logits(self, x):
        """Float32 logits, computed as the step computes its forward pass (bf16 copies in bf16)."""
        return self.prec.result(self._forward(x, self._compute_layers())[1]).t()

    def loss(self, logits, y):
        """The notebook's loss: -log(softmax(z)[y] + 1e-9), averaged over the batch. The softmax runs on the
        (classes, N) layout, as the step's does: on the AMX Xeon 50,000 logits took 1.1 ms against 5.3 ms
        along rows of 10, and the loop takes the epoch's training loss from here, inside its timing."""
        probs_t = torch.softmax(logits.t(), dim=0)
        return -torch.log(probs_t.gather(0, y.unsqueeze(0)) + 1e-9).mean()

    def step(self, x, y):
        bufs = self._buffers(x)
        layers = self._compute_layers()
        inputs, logits_t = self._forward(x, layers, bufs["hidden"])  # a·Wᵀ + b, relu in place, into the buffers
        logits_t = self.prec.result(logits_t)
        # (softmax - onehot)ᵀ * B, written into the softmax: p_true + (-1) is the same float as p_true - 1
        delta_t = torch.softmax(logits_t, dim=0).scatter_add_(0, y.unsqueeze(0), bufs["minus_one"])
        delta, step_size, ones = delta_t.t(), -self.lr / x.shape[0], bufs["ones"]  # 1/B folds into the step
        # Per layer: the bias first and the ReLU mask last, so each single-threaded pass over a delta
        # runs right where that delta was written (on this thread), and the GEMMs, split over the
        # threads, come in pairs; the products themselves are the same.
        for i in range(len(layers) - 1, -1, -1):
            weight, bias = self._layers[i]
            exact, dtype = self._exact[i], self._dtypes[i]
            if delta.dtype != dtype:  # a delta entering a layer of the other dtype, cast once
                delta = delta.to(dtype)
                delta_t = delta.t()
            if exact:  # b += step·δᵀ1 and, below, W += step·δᵀa: one BLAS call each, no intermediate
                bias.addmv_(delta_t, ones, alpha=step_size)
            else:  # summed with float32 accumulation, rounded to bf16 like the weight-gradient product
                bias.add_(torch.sum(delta, 0, out=bufs["bias_grad"][i]), alpha=step_size)
            if i > 0:  # the delta for the layer below uses this layer's weights before their update
                below = torch.mm(delta, layers[i][0], out=bufs["delta"][i - 1])
            if exact:
                weight.addmm_(delta_t, inputs[i], alpha=step_size)
            else:  # a bf16 product on the δᵀ view (a dense copy cost more than it saved), summed into the master
                product, widened = bufs["weight_grad"][i]  # through a float32 buffer: a mixed-dtype add_
                torch.mm(delta_t, inputs[i], out=product)  # would allocate one every step
                weight.add_(widened.copy_(product), alpha=step_size)
            if i > 0:  # ReLU mask in place: the layer input is relu(z), > 0 exactly where z > 0
                delta = threshold_backward_(below, inputs[i], 0, grad_input=below)
                delta_t = bufs["delta_t"][i - 1]
        return None, logits_t.t()  # the loss: left to loss() on the logits, once an epoch

    # the manual model needs no autograd anywhere
    def to(self, device):
        for name, p in self.params.items():
            self.params[name] = p.detach().to(device).requires_grad_(False)
        tensors = list(self.params.values())
        self._layers = tuple(zip(tensors[0::2], tensors[1::2]))
        self._master_layers = tuple(views(weight, bias, i == len(self._layers) - 1)
                                    for i, (weight, bias) in enumerate(self._layers))
        # per layer: whether it computes in the masters' float32 (always so in a float32 run) and its dtype
        self._exact = tuple(self.prec.exact or weight.shape[0] < BF16_MIN_OUTPUTS
                            for weight, _ in self._layers)
        self._dtypes = tuple(weight.dtype if exact else self.prec.dtype
                             for (weight, _), exact in zip(self._layers, self._exact))
        self.copies = precision.Copies(self.prec)
        self._bufs = {}
        return self


def manual(cfg, n_features, n_classes, generator):
    return ManualMLP(layer_sizes(cfg, n_features, n_classes), cfg.lr, generator, precision.of(cfg))


def builtin(cfg, n_features, n_classes, generator):
    sizes = layer_sizes(cfg, n_features, n_classes)
    layers = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        init_linear_(linear.weight, linear.bias, last=i == len(sizes) - 2, generator=generator)
        layers += [linear, nn.ReLU()]
    return Builtin(nn.Sequential(*layers[:-1]), nn.CrossEntropyLoss(), cfg.lr, precision=precision.of(cfg))
