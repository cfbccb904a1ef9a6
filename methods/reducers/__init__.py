"""Post-hoc visual-token reducers compared in the LiteFrame paper (Table 1, Fig. 2)."""

from liteframe_bench.methods.reducers import fastvid, pooling, prumerge, tome, visionzip, wap  # noqa: F401
