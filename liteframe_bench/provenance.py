"""Where and how a number was made: machine, device, library versions, git revision."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import torch

PACKAGES = ("liteframe-bench", "torch", "torchvision", "transformers", "lmms-eval", "av", "numpy")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str | torch.device) -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"{cpu_name()} ({os.cpu_count()} logical cores, torch threads {torch.get_num_threads()})"


def git_sha(path: str | Path | None = None) -> str | None:
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _decoder() -> str | None:
    try:
        from liteframe_bench.video import decoder_name
    except ImportError:
        return None
    return decoder_name()


def machine(device: str | torch.device = "cpu") -> dict[str, object]:
    """A provenance record for a measurement on ``device``."""
    return {
        "device": str(torch.device(device)),
        "device_name": device_name(device),
        "platform": platform.platform(),
        "git_sha": git_sha(),
        "video_decoder": _decoder(),
        "versions": versions(),
    }
