"""Post-hoc visual-token reducers compared in the LiteFrame paper (Table 1, Fig. 2), and the random baseline."""

from liteframe_bench.methods.reducers import fastvid, pooling, prumerge, random_drop, tome, visionzip, wap  # noqa: F401
