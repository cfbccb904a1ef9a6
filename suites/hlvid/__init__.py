"""lmms-eval task folder: hlvid."""
