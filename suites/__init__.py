"""lmms-eval task folders and the generator of the offline synthetic suite, installed as ``liteframe_bench.suites``."""
