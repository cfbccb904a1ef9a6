"""GPUs, op groups and the roofline: what every cost formula set (InternVL3, Qwen2.5-VL, the Qwen2 LLM) is
written in, and how a stage's op groups become a lower-bound time (conventions: :mod:`liteframe_bench.cost`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from liteframe_bench.errors import SpecError


@dataclass(frozen=True)
class GPUSpec:
    """A GPU for the roofline: dense bf16 tensor-core peak (FLOP/s, no sparsity) and memory bandwidth (B/s)."""

    name: str
    label: str
    peak_flops: float
    bandwidth: float
    memory_bytes: float
    source: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: Datasheet numbers. NVIDIA quotes tensor-core throughput "with sparsity"; the dense number is half of it.
GPUS: dict[str, GPUSpec] = {
    g.name: g
    for g in (
        GPUSpec(
            "h100",
            "NVIDIA H100 SXM5 80GB",
            989.4e12,
            3.35e12,
            80e9,
            "NVIDIA H100 Tensor Core GPU datasheet: BF16 1,979 TFLOPS with sparsity (989.4 dense), HBM3 3.35 TB/s",
        ),
        GPUSpec(
            "h100-pcie",
            "NVIDIA H100 PCIe 80GB",
            756.5e12,
            2.0e12,
            80e9,
            "NVIDIA H100 Tensor Core GPU datasheet: BF16 1,513 TFLOPS with sparsity (756.5 dense), HBM2e 2.0 TB/s",
        ),
        GPUSpec(
            "h200",
            "NVIDIA H200 SXM 141GB",
            989.4e12,
            4.8e12,
            141e9,
            "NVIDIA H200 Tensor Core GPU datasheet: BF16 1,979 TFLOPS with sparsity (989.4 dense), HBM3e 4.8 TB/s",
        ),
        GPUSpec(
            "a100",
            "NVIDIA A100 SXM4 80GB",
            312e12,
            2.039e12,
            80e9,
            "NVIDIA A100 Tensor Core GPU datasheet: BF16 312 TFLOPS dense (624 with sparsity), HBM2e 2,039 GB/s",
        ),
        GPUSpec(
            "a100-40gb",
            "NVIDIA A100 SXM4 40GB",
            312e12,
            1.555e12,
            40e9,
            "NVIDIA A100 Tensor Core GPU datasheet: BF16 312 TFLOPS dense (624 with sparsity), HBM2 1,555 GB/s",
        ),
        GPUSpec(
            "l40s",
            "NVIDIA L40S 48GB",
            362.05e12,
            864e9,
            48e9,
            "NVIDIA L40S datasheet: BF16 362.05 TFLOPS dense (733 with sparsity), GDDR6 864 GB/s",
        ),
    )
}


def get_gpu(gpu: str | GPUSpec) -> GPUSpec:
    """A :class:`GPUSpec` by name (case-insensitive) or the spec itself; :class:`SpecError` listing names."""
    if isinstance(gpu, GPUSpec):
        return gpu
    key = str(gpu).strip().lower()
    if key not in GPUS:
        raise SpecError(f"unknown GPU {gpu!r} for the roofline; allowed: {', '.join(GPUS)}")
    return GPUS[key]


@dataclass
class Op:
    """One op group: FLOPs (FlopCounterMode convention), causal-aware FLOPs, weight and activation bytes."""

    name: str
    flops: float = 0
    flops_useful: float = 0
    weight_bytes: float = 0
    act_bytes: float = 0

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.act_bytes

    def scaled(self, k: float) -> Op:
        return Op(self.name, self.flops * k, self.flops_useful * k, self.weight_bytes * k, self.act_bytes * k)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "flops": self.flops,
            "flops_useful": self.flops_useful,
            "weight_bytes": self.weight_bytes,
            "act_bytes": self.act_bytes,
            "bytes": self.bytes,
        }


def linear(name: str, m: float, k: int, n: int, b: float, bias: bool, extra_weights: int = 0) -> Op:
    """``m`` tokens through Linear(k -> n): ``2 m k n`` FLOPs; weights (+ bias, + ``extra_weights`` such as a
    norm fused in front) read once, input read and output written once."""
    f = 2 * m * k * n
    return Op(name, f, f, b * (k * n + (n if bias else 0) + extra_weights), b * m * (k + n))


def merge(ops: Sequence[Op], name: str | None = None) -> Op:
    out = Op(name or ops[0].name)
    for o in ops:
        out.flops += o.flops
        out.flops_useful += o.flops_useful
        out.weight_bytes += o.weight_bytes
        out.act_bytes += o.act_bytes
    return out


def roofline(ops: Sequence[Op], gpu: str | GPUSpec) -> dict[str, Any]:
    """Lower-bound time of op groups: ``sum(max(flops_useful / peak, bytes / bandwidth))``.

    ``compute_s`` / ``memory_s`` are the stage totals of the two terms; ``bound`` is the larger one's name
    (None when there is no work).
    """
    g = get_gpu(gpu)
    compute = sum(o.flops_useful for o in ops) / g.peak_flops
    memory = sum(o.bytes for o in ops) / g.bandwidth
    predicted = sum(max(o.flops_useful / g.peak_flops, o.bytes / g.bandwidth) for o in ops)
    return {"predicted_s": predicted, "compute_s": compute, "memory_s": memory, "bound": bound(compute, memory)}


def bound(compute_s: float, memory_s: float) -> str | None:
    """``compute`` or ``memory``, whichever term is larger; None for a stage with no work."""
    if compute_s == memory_s == 0:
        return None
    return "compute" if compute_s >= memory_s else "memory"
