"""Which numeric precision the models run in on this machine (``SIEVE_PRECISION``).

``auto`` picks bf16 where the hardware multiplies bf16 natively, a GPU (that supports it) or a CPU
with AMX or AVX-512-BF16 (a MiniLM forward ~3x faster than fp32 there, bench/precision.py), and
fp32 elsewhere. int8 (dynamic quantisation, CPU only) is never picked automatically: it was slower
than bf16 on AMX and moves scores more (bench/results/precision.json); name it to use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from index.embedder import resolve_device


@dataclass(frozen=True)
class Precision:
    device: str  # cpu, cuda, cuda:1 …
    precision: str  # fp32, bf16 or int8
    reason: str  # why this one, for `sieve doctor` and /healthz


def cpu_features() -> list[str]:
    """The CPU's matrix extensions that matter here, as torch sees them."""
    cpu = torch.cpu
    found = []
    for name, probe in (
        ("amx", "_is_amx_tile_supported"),
        ("avx512_bf16", "_is_avx512_bf16_supported"),
        ("avx512_vnni", "_is_vnni_supported"),
        ("avx512", "_is_avx512_supported"),
    ):
        check = getattr(cpu, probe, None)
        if check is not None and check():
            found.append(name)
    return found


def resolve_precision(setting: str, device: str) -> Precision:
    """The precision for ``setting`` (auto, fp32, bf16, int8) on ``device`` (auto, cpu, cuda…)."""
    device = resolve_device(device)
    if setting == "int8" and not device.startswith("cpu"):
        raise ValueError(f"precision int8 runs on CPU only, got device {device!r}")
    if setting != "auto":
        return Precision(device, setting, "set by SIEVE_PRECISION")
    if device.startswith("cuda"):
        if torch.cuda.is_bf16_supported():
            return Precision(device, "bf16", "GPU with bf16")
        return Precision(device, "fp32", "GPU without bf16")
    features = cpu_features()
    fast = [f for f in ("amx", "avx512_bf16") if f in features]
    if fast:
        return Precision(device, "bf16", f"CPU has {' and '.join(fast)}")
    return Precision(device, "fp32", "CPU without AMX or AVX-512-BF16")
