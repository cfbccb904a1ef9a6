"""The model zoo: trained checkpoints shipped inside the package, each with a model card beside its weights.

=============  ===============================================================  ==================================
name           what                                                             used by
=============  ===============================================================  ==================================
``mini``       the mini InternVL3 (teacher), trained from scratch on synth       ``--model mini`` (the default)
``mini-ctd``   its LiteFrame student after Compressed Token Distillation          ``liteframe-ctd`` on ``mini``
``mini-lma``   that student after Language Model Adaptation (+ LoRA, projector)  ``liteframe`` on ``mini``
=============  ===============================================================  ==================================

Weights are safetensors stored in float16 (loaded as the run's dtype); ``card.json`` says how each was made
(config, parameters, data seeds, steps, wall time, machine, command) and what it scores per question family.
``lfbench zoo train`` reproduces all three from a seed; ``lfbench zoo ls`` lists them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from liteframe_bench.errors import LfbenchError

#: Folder of the shipped checkpoints (``$LFBENCH_ZOO`` points lfbench at another one, e.g. a fresh ``zoo train``).
SHIPPED = Path(__file__).parent / "weights"
NAMES = ("mini", "mini-ctd", "mini-lma")
CARD = "card.json"
#: The backbone each student belongs to, and the method that runs it.
STUDENTS = {"mini-ctd": ("mini", "liteframe-ctd"), "mini-lma": ("mini", "liteframe")}


def root() -> Path:
    env = os.environ.get("LFBENCH_ZOO")
    return Path(env).expanduser() if env else SHIPPED


def path(name: str) -> Path:
    """The folder of checkpoint ``name``; a clear error when it is unknown or not there."""
    if name not in NAMES:
        raise LfbenchError(f"unknown zoo checkpoint {name!r}; allowed: {', '.join(NAMES)}")
    folder = root() / name
    if not (folder / CARD).is_file():
        raise LfbenchError(
            f"zoo checkpoint {name!r} is missing from {folder} (no {CARD}); run `lfbench zoo train --out DIR` and "
            f"point $LFBENCH_ZOO at DIR, or reinstall lfbench"
        )
    return folder


def card(name: str) -> dict:
    return json.loads((path(name) / CARD).read_text())


def entries() -> list[dict]:
    """Every checkpoint present under :func:`root`, with its card (for ``lfbench zoo ls``)."""
    out = []
    for name in NAMES:
        folder = root() / name
        if (folder / CARD).is_file():
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            card = json.loads((folder / CARD).read_text())
            out.append({"name": name, "path": str(folder), "bytes": size, "card": card})
    return out


def load_mini(device, dtype):
    """(InternVLForConditionalGeneration, tokenizer) of the shipped ``mini`` teacher, on ``device`` in ``dtype``."""
    from safetensors.torch import load_file
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    from liteframe_bench.zoo.model import load_state, load_tokenizer

    folder = path("mini")
    cfg = InternVLConfig.from_dict(json.loads((folder / "config.json").read_text()))
    cfg._attn_implementation = "sdpa"
    tok = load_tokenizer(folder)
    net = InternVLForConditionalGeneration(cfg)  # a few million parameters: built on the CPU, then overwritten
    try:
        load_state(net, load_file(str(folder / "model.safetensors")), str(folder / "model.safetensors"))
    except ValueError as e:
        raise LfbenchError(str(e)) from None
    net.generation_config.pad_token_id = tok.pad_token_id
    return net.to(device=device, dtype=dtype).eval(), tok
