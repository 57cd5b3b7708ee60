"""Compute precision of the hand-written models: float32, or bfloat16 GEMMs on float32 master weights.

A bf16 run of a manual or handgrad model keeps its weights (the masters) in float32 and casts weights and
inputs to bf16 for every matrix product; products come back as float32 for what follows (softmax,
sigmoid, the loss and its gradient stay in float32), and each update is a bf16 product added into the
float32 masters. The builtin models get the same split from torch.autocast (models.common.Builtin).
Evaluation computes the same way as training: logits() goes through these very products.

In float32 every method is the plain op the models called before bf16 existed, not a cast-then-op, so
a float32 run does exactly the arithmetic it always did.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Precision:
    dtype: torch.dtype = torch.float32

    @property
    def exact(self) -> bool:
        return self.dtype == torch.float32

    def cast(self, tensor: torch.Tensor) -> torch.Tensor:
        """A GEMM operand in the compute dtype (a bf16 tensor is returned as it is, no copy)."""
        return tensor if self.exact else tensor.to(self.dtype)

    def result(self, tensor: torch.Tensor) -> torch.Tensor:
        """A product back in float32, for the elementwise math and the loss."""
        return tensor if self.exact else tensor.float()

    def addmm(self, bias, a, b) -> torch.Tensor:
        """bias + a @ b, as float32 (differentiable: autograd reaches the float32 masters through the casts)."""
        if self.exact:
            return torch.addmm(bias, a, b)
        return torch.addmm(self.cast(bias), self.cast(a), self.cast(b)).float()

    def matmul(self, a, b) -> torch.Tensor:
        return a @ b if self.exact else (self.cast(a) @ self.cast(b)).float()

    def addmm_(self, target, a, b, alpha: float) -> None:
        """target += alpha · a @ b, in place on a float32 master: in bf16 the product is bf16 and the sum
        float32, so small updates are not lost to the masters' rounding."""
        if self.exact:
            target.addmm_(a, b, alpha=alpha)
        else:
            target.add_(torch.mm(self.cast(a), self.cast(b)), alpha=alpha)


FLOAT32 = Precision()  # the default of every model: plain float32 ops


@dataclass(frozen=True)
class _Float64(Precision):
    """float64 (mnistbench verify): the plain ops of float32, on weights and data made in float64."""

    dtype: torch.dtype = torch.float64

    @property
    def exact(self) -> bool:
        return True


FLOAT64 = _Float64()


def of(cfg) -> Precision:
    """The precision a RunConfig asks for (config.validate has checked the name)."""
    if cfg.dtype == "float64":
        return FLOAT64
    return Precision(TORCH_DTYPES[cfg.dtype])


def autocast(precision: Precision, device: torch.device):
    """torch.autocast to the compute dtype on device's type, or nothing at all in float32."""
    if precision.exact:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision.dtype)
