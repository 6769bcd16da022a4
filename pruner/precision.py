"""Run a torch module in a chosen numeric precision: fp32, bf16 weights, or int8 dynamic.

    model = to_precision(model, "bf16", "cpu")

bf16 halves the weights and, on CPUs with AMX or AVX-512-BF16 (and on GPUs), runs the matrix
products about 3x faster than fp32 (bench/precision.py). int8 is torch's dynamic quantisation of
the Linear layers (weights int8, activations quantised per call); CPU only. The caller chooses
(``app/precision.py`` picks per machine); this module only applies the choice.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

Precision = Literal["fp32", "bf16", "int8"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


def check_precision(precision: str, device: str) -> Precision:
    """The precision, validated for the device (int8 dynamic quantisation exists on CPU only)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8" and not device.startswith("cpu"):
        raise ValueError(f"int8 runs on CPU only, got device {device!r}")
    return precision  # type: ignore[return-value]  # checked against PRECISIONS above


def to_precision(model: nn.Module, precision: str, device: str) -> nn.Module:
    """The module moved to ``device`` in ``precision`` (a new module for int8)."""
    check_precision(precision, device)
    model.to(torch.device(device))
    if precision == "bf16":
        return model.to(torch.bfloat16)
    model.to(torch.float32)
    if precision == "int8":
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    return model
