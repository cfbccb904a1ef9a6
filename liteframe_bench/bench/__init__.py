"""Benchmarks: commands that print numbers (speed targets live here, never in timed tests)."""
