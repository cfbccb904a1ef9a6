"""lmms-eval task folder: synth."""
