"""The results store: per-sample and per-cell parquet tables with a versioned schema, and run provenance.

Layout of a results folder (one sweep, or shards merged into one)::

    DIR/runs/<run_id>.json          provenance of each invocation (command, git sha, versions, device, seed, ...)
    DIR/samples/<cell_id>.parquet   one row per (cell, sample): prediction, correctness, tokens, timings, error
    DIR/cells/<cell_id>.parquet     one row per cell: accuracy, latency per stage, tokens, status

A cell is (method, frames, suite) on one model and settings; ``cell_id`` is a hash of all of them, so a rerun of
the same sweep finds its finished cells. Each file is written to a temporary name and renamed into place, and a
cell's row is written after its samples: a cell is done exactly when ``cells/<cell_id>.parquet`` exists.
Every parquet file carries ``lfbench_schema`` metadata; anything else in the folder is an error naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from liteframe_bench.errors import LfbenchError
from liteframe_bench.stages import STAGES

SCHEMA_VERSION = "2"
#: Versions this lfbench reads. v1 lacks the TTFT, total/measured FLOPs and parsed-answer columns: they read as
#: missing values (v1 never filled ``flops_*`` either).
READABLE_VERSIONS = ("1", "2")
SCHEMA_KEY = b"lfbench_schema"
KIND_KEY = b"lfbench_table"

#: Per-sample columns (accuracy mode; timings here are informative, latency comes from the cell's timing runs).
SAMPLE_COLUMNS: dict[str, str] = {
    "cell_id": "string",
    "run_id": "string",
    "method": "string",  # canonical spec, e.g. "wap" or "prumerge:variant=plus"
    "frames": "int64",
    "suite": "string",  # lmms-eval task name
    "doc_id": "int64",
    "video": "string",
    "prediction": "string",
    "answer": "string",  # the answer the suite's scorer parsed from the prediction (e.g. a letter), when it gives one
    "target": "string",
    "correct": "float64",  # 1.0 / 0.0 (a score in [0, 1] for tasks that grade partially); NaN if unscorable
    "error": "string",  # None when the sample ran
    "visual_tokens": "float64",
    "tokens_before": "float64",
    "prompt_tokens": "float64",
    "new_tokens": "float64",
    **{f"t_{s}_s": "float64" for s in STAGES},
    "wall_s": "float64",
}

#: Per-cell columns. ``status`` is ok | error (the cell could not run: ``reason`` says why).
CELL_COLUMNS: dict[str, str] = {
    "cell_id": "string",
    "run_id": "string",
    "method": "string",
    "spec": "string",  # as the user wrote it
    "reducer": "string",  # registry name of the reducer, or "none"
    "frames": "int64",
    "suite": "string",
    "model": "string",  # backbone source (tiny, a folder, random:<preset>)
    "status": "string",
    "reason": "string",
    "n_samples": "int64",
    "n_errors": "int64",
    "accuracy": "float64",  # mean per-sample correctness in [0, 1]
    "official_metric": "string",  # lmms-eval's headline metric name for the suite
    "official_score": "float64",  # its value as lmms-eval reports it (often a percentage)
    "visual_tokens": "float64",  # median over samples
    "prompt_tokens": "float64",
    "timing_samples": "int64",  # videos timed (timing mode: warm-up, repeats, fixed decode length, no caches)
    "timing_repeats": "int64",
    "new_tokens": "int64",  # fixed decode length in timing mode
    **{f"lat_{s}_s": "float64" for s in STAGES},  # median over timed videos of per-video medians
    "lat_total_s": "float64",  # sum of the stage medians
    "lat_e2e_s": "float64",  # median end-to-end wall time
    "lat_e2e_q25_s": "float64",
    "lat_e2e_q75_s": "float64",
    "lat_ttft_s": "float64",  # time to first token: vision + reduce + project + prefill, per run; median as e2e
    "lat_ttft_decode_s": "float64",  # the same plus the video decode
    # FLOPs of one timing-mode run (its prompt length and fixed decode length; without timing runs, the samples'
    # median prompt) per stage, FlopCounterMode convention, from the analytic cost model for the cell's model
    # config, method and frames; decode is not modelled (no FLOPs column value); NaN where the model cannot say
    **{f"flops_{s}": "float64" for s in STAGES},
    "flops_total": "float64",  # sum of the modelled stages
    **{f"flops_measured_{s}": "float64" for s in STAGES},  # FlopCounterMode on one run (lfbench sweep --flops)
    "flops_source": "string",  # analytic | analytic+measured | measured | "none: <why the cost model cannot>"
    "started_at": "string",
    "finished_at": "string",
}


def cell_id(**key: Any) -> str:
    """A stable id from everything that defines a cell (method, frames, suite, model, settings)."""
    blob = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    extra = sorted({k for r in rows for k in r} - set(columns))
    if extra:
        raise LfbenchError(f"unknown result columns {extra}; the schema v{SCHEMA_VERSION} has {list(columns)}")
    df = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns))
    return df.astype(columns)


def _conform(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """A table of an older schema version with the columns it lacks added as missing values, in schema order."""
    missing = [c for c in columns if c not in df.columns]
    if not missing:
        return df
    df = df.assign(**{c: pd.Series([None] * len(df), dtype=columns[c], index=df.index) for c in missing})
    return df[[*columns, *(c for c in df.columns if c not in columns)]]


def _atomic_parquet(df: pd.DataFrame, path: Path, kind: str) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {}) | {SCHEMA_KEY: SCHEMA_VERSION.encode(), KIND_KEY: kind.encode()}
    table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _atomic_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class ResultsDir:
    """A results folder: write cells atomically, find finished ones, load everything back."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def write_run(self, run_id: str, provenance: dict[str, Any]) -> None:
        _atomic_text(json.dumps(provenance, indent=2, default=str) + "\n", self.path / "runs" / f"{run_id}.json")

    def is_done(self, cid: str) -> bool:
        return (self.path / "cells" / f"{cid}.parquet").exists()

    def write_cell(self, cell: dict[str, Any], samples: list[dict[str, Any]]) -> None:
        """Samples first, then the cell row: a crash in between leaves a partial cell that a rerun redoes."""
        cid = cell["cell_id"]
        _atomic_parquet(_frame(samples, SAMPLE_COLUMNS), self.path / "samples" / f"{cid}.parquet", "samples")
        _atomic_parquet(_frame([cell], CELL_COLUMNS), self.path / "cells" / f"{cid}.parquet", "cells")

    def _read(self, kind: str, columns: dict[str, str]) -> pd.DataFrame:
        folder = self.path / kind
        frames = []
        for f in sorted(folder.glob("*")) if folder.is_dir() else []:
            if f.name.startswith("."):
                continue  # temporary files of an interrupted write
            if f.suffix != ".parquet":
                raise LfbenchError(f"{f}: not a results file (expected {kind}/<cell_id>.parquet written by lfbench)")
            try:
                table = pq.read_table(f)
            except Exception as e:
                raise LfbenchError(f"{f}: unreadable parquet ({type(e).__name__}: {e})") from None
            meta = table.schema.metadata or {}
            version = meta.get(SCHEMA_KEY, b"").decode()
            if meta.get(KIND_KEY, b"").decode() != kind or not version:
                raise LfbenchError(f"{f}: not an lfbench {kind} table (no lfbench_schema metadata)")
            if version not in READABLE_VERSIONS:
                raise LfbenchError(
                    f"{f}: results schema v{version}; this lfbench reads v{', v'.join(READABLE_VERSIONS)}"
                )
            frames.append(_conform(table.to_pandas(), columns))
        if not frames:
            return _frame([], columns)
        return pd.concat(frames, ignore_index=True)

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(cells, samples) of every finished cell; samples of unfinished cells are left out."""
        if not self.path.is_dir():
            raise LfbenchError(f"results folder {self.path} does not exist")
        for entry in self.path.iterdir():
            if entry.name not in (
                "runs",
                "cells",
                "samples",
                "report",
                "figures",
                "exports",
            ) and not entry.name.startswith("."):
                raise LfbenchError(
                    f"{entry}: unexpected entry in a results folder (allowed: runs/, cells/, samples/, "
                    "report/, figures/, exports/)"
                )
        cells = self._read("cells", CELL_COLUMNS)
        samples = self._read("samples", SAMPLE_COLUMNS)
        samples = samples[samples["cell_id"].isin(set(cells["cell_id"]))].reset_index(drop=True)
        return cells, samples

    def runs(self) -> list[dict[str, Any]]:
        out = []
        for f in sorted((self.path / "runs").glob("*.json")):
            try:
                out.append(json.loads(f.read_text()))
            except json.JSONDecodeError as e:
                raise LfbenchError(f"{f}: malformed run record ({e})") from None
        return out


def merge(sources: list[str | os.PathLike], out: str | os.PathLike) -> dict[str, int]:
    """Join shard folders into ``out``: copy finished cells (samples then cell row) and run records.

    The same cell in two sources keeps the first copy (they come from the same plan); returns counts.
    """
    import shutil

    dest = ResultsDir(out)
    copied = skipped = 0
    for src in sources:
        store = ResultsDir(src)
        cells, _ = store.load()  # validates every file first
        for f in sorted((store.path / "runs").glob("*.json")):
            target = dest.path / "runs" / f.name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
        for cid in cells["cell_id"]:
            if dest.is_done(cid):
                skipped += 1
                continue
            for kind in ("samples", "cells"):  # samples first: the cell file marks the cell done
                (dest.path / kind).mkdir(parents=True, exist_ok=True)
                tmp = dest.path / kind / f".{cid}.parquet.tmp"
                shutil.copyfile(store.path / kind / f"{cid}.parquet", tmp)
                os.replace(tmp, dest.path / kind / f"{cid}.parquet")
            copied += 1
    dest.load()
    return {"copied": copied, "skipped_duplicates": skipped}
