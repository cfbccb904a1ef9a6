"""lmms-eval task folder ``synth`` (tasks ``synth``, ``synth_tiny``) and the generator of the offline synthetic suite.

See :mod:`liteframe_bench.suites.synth.generator` and ``README.md`` beside this file.
"""

from liteframe_bench.data import register_check
from liteframe_bench.suites.synth.generator import (
    FAMILIES,
    GENERATOR_VERSION,
    SIZES,
    Scene,
    check,
    check_answer,
    generate,
    items,
    load,
    make,
    render,
)

# `lfbench data check synth` (liteframe_bench.data.check) finds the checker once this package is imported.
register_check("synth", check)

__all__ = ["FAMILIES", "GENERATOR_VERSION", "SIZES", "Scene", "check", "check_answer", "generate", "items", "load",
           "make", "render"]
