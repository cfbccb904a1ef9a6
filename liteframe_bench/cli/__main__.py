"""``python -m liteframe_bench.cli``: the same as ``lfbench``."""

from liteframe_bench.cli import console_main

console_main()
