"""lmms-eval task folder: longvideobench."""
