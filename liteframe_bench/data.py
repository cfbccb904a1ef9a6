"""Where local benchmark copies live: one variable, ``LFBENCH_DATA`` (default ``~/.cache/lfbench/data``).

Each suite keeps its files under ``$LFBENCH_DATA/<suite>/``; the task folders in ``liteframe_bench.suites``
read from there (their YAMLs load a one-row stub shipped beside them, and ``process_docs`` swaps in the real
annotations), so nothing is ever fetched from a hub.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "LFBENCH_DATA"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$LFBENCH_DATA``, else ``~/.cache/lfbench/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lfbench" / "data"


def suite_dir(suite: str, root: str | os.PathLike | None = None) -> Path:
    """``<data root>/<suite>``."""
    return data_root(root) / suite
