"""lfbench: latency/accuracy benchmarking and Pareto analysis for efficient Video LLMs.

Public API::

    import liteframe_bench as lfb
    reducer = lfb.create("wap:ratio=16")
    out = reducer(lfb.TokenGrid(x, cls_attn=logits))
"""

from liteframe_bench.errors import ContextError, LfbenchError, PluginError, ReducerError, SpecError, VideoError
from liteframe_bench.interfaces import (
    AUX_INPUTS,
    INSERTION_POINTS,
    Generation,
    Method,
    ReducedTokens,
    Reducer,
    TokenGrid,
    VisualTokens,
)
from liteframe_bench.registry import (
    MethodSpec,
    canonical_spec,
    create,
    entries,
    get,
    load_plugin_dir,
    load_plugins,
    parse_method_spec,
    parse_spec,
    register_method,
    register_reducer,
    split_specs,
)

__version__ = "0.1.0"

__all__ = [
    "AUX_INPUTS",
    "ContextError",
    "VideoError",
    "INSERTION_POINTS",
    "Generation",
    "LfbenchError",
    "Method",
    "MethodSpec",
    "PluginError",
    "ReducedTokens",
    "Reducer",
    "ReducerError",
    "SpecError",
    "TokenGrid",
    "VisualTokens",
    "canonical_spec",
    "create",
    "entries",
    "get",
    "load_plugin_dir",
    "load_plugins",
    "parse_method_spec",
    "parse_spec",
    "register_method",
    "register_reducer",
    "split_specs",
]
