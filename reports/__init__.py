"""Figure and report specs (installed as ``liteframe_bench.reports``); paper.yaml regenerates the LiteFrame paper."""
