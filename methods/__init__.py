"""Built-in methods and reducers, installed as ``liteframe_bench.methods``.

They register through the ``lfbench.methods`` entry point (``builtin``), the same path a third-party plugin
uses; importing this package registers everything below.
"""

from liteframe_bench.methods import baseline, lowres, reducers  # noqa: F401
from liteframe_bench.methods.liteframe import methods as liteframe_methods  # noqa: F401
