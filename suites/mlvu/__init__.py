"""lmms-eval task folder: mlvu."""
