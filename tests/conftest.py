import os

import torch

# Determinism and a small thread count: the suite runs on 2 cores.
torch.manual_seed(0)
torch.set_num_threads(min(2, os.cpu_count() or 1))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
