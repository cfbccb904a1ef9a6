"""lmms-eval task folder: videomme."""
