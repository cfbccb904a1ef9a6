"""Where local benchmark copies live: one variable, ``LFBENCH_DATA`` (default ``~/.cache/lfbench/data``).

Each suite keeps its files under ``$LFBENCH_DATA/<folder>/``; the task folders in ``liteframe_bench.suites``
read from there (their YAMLs load a one-row stub shipped beside them, and ``process_docs`` swaps in the real
annotations), so nothing is ever fetched from a hub.

:data:`LAYOUTS` says, per suite, which files go where and where to get them; each suite folder's
``README.md`` says the same at length. :func:`check` validates a local copy (annotation file, video count,
missing and unreadable videos) and :func:`render_check` prints what is missing and where it should go.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from liteframe_bench.errors import LfbenchError

DATA_ENV = "LFBENCH_DATA"

log = logging.getLogger(__name__)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$LFBENCH_DATA``, else ``~/.cache/lfbench/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lfbench" / "data"


def suite_dir(suite: str, root: str | os.PathLike | None = None) -> Path:
    """``<data root>/<suite>``."""
    return data_root(root) / suite


# ----------------------------------------------------------------------------------------------------------
# Errors


class DataError(LfbenchError, ValueError):
    """A local benchmark copy is unusable (malformed annotations) or the suite name is unknown."""


class DataMissingError(DataError):
    """A local benchmark copy lacks its annotation file(s)."""


class TaskDataExit(SystemExit):
    """Raised by the task folders' ``process_docs`` when a suite's local copy is missing or malformed.

    lmms-eval wraps dataset loading in a retry (5 attempts, 2 s apart) that turns any ``Exception`` into a
    ``tenacity.RetryError``; a ``SystemExit`` passes through at once, so the lmms-eval CLI prints just this
    message and exits with status 1. Python callers (the sweep) catch it as ``TaskDataExit``; the underlying
    :class:`DataError` is ``.error``.
    """

    def __init__(self, error: DataError):
        super().__init__(str(error))
        self.error = error


# ----------------------------------------------------------------------------------------------------------
# Layouts


@dataclass(frozen=True)
class Layout:
    """Where one suite's local copy lives under the data root, and where to get it.

    ``module`` is the suite's loader (``liteframe_bench.suites.<name>.layout``): it reads the annotations into
    lmms-eval docs (``load_rows(folder, suite=..., warnings=None)``, which appends one line per tolerated quirk
    of a record to ``warnings``), names the expected annotation files (``annotation_files(folder)``) and maps a
    doc to its video (``video_path(doc, folder)``); it imports nothing from lmms-eval.
    """

    suite: str
    folder: str
    tasks: tuple[str, ...]
    annotation: str
    videos: str
    source: str
    fetch: str
    module: str
    subtitles: str | None = None
    metric: str = ""


LAYOUTS: dict[str, Layout] = {
    "videomme": Layout(
        suite="videomme",
        folder="videomme",
        tasks=("lfb_videomme",),
        annotation="videomme/test-00000-of-00001.parquet",
        videos="data/<videoID>.mp4 (.MP4 and .mkv accepted)",
        source="hub dataset lmms-lab/Video-MME (lmms-eval/Video-MME in lmms-eval 0.7.3's videomme.yaml)",
        fetch="copy videomme/test-00000-of-00001.parquet from the hub dataset and unzip videos_chunked_*.zip "
        "so that the videos land in data/",
        module="liteframe_bench.suites.videomme.layout",
        metric="videomme_perception_score (percent)",
    ),
    "videomme_w_subtitle": Layout(
        suite="videomme_w_subtitle",
        folder="videomme",
        tasks=("lfb_videomme_w_subtitle",),
        annotation="videomme/test-00000-of-00001.parquet",
        videos="data/<videoID>.mp4 (.MP4 and .mkv accepted)",
        source="hub dataset lmms-lab/Video-MME (lmms-eval/Video-MME in lmms-eval 0.7.3's videomme.yaml)",
        fetch="as for videomme, and unzip subtitle.zip so that the .srt files land in subtitle/",
        module="liteframe_bench.suites.videomme.layout",
        subtitles="subtitle/<videoID>.srt (videos without one are prompted with 'No subtitles available')",
        metric="videomme_perception_score (percent)",
    ),
    "mlvu": Layout(
        suite="mlvu",
        folder="mlvu",
        tasks=("lfb_mlvu_dev",),
        annotation="json/{1_plotQA,2_needle,3_ego,4_count,5_order,6_anomaly_reco,7_topic_reasoning}.json",
        videos="video/<N_task>/<video> (e.g. video/1_plotQA/movie101_66.mp4)",
        source="hub dataset MLVU/MVLU (the MLVU/ folder: json/ and video/)",
        fetch="copy (or symlink) the contents of the dataset's MLVU/ folder here: json/ and video/",
        module="liteframe_bench.suites.mlvu.layout",
        metric="mlvu_percetion_score (percent, mean over the 7 task types)",
    ),
    "longvideobench": Layout(
        suite="longvideobench",
        folder="longvideobench",
        tasks=("lfb_longvideobench_val_v",),
        annotation="lvb_val.json",
        videos="videos/<video_path>",
        source="hub dataset longvideobench/LongVideoBench",
        fetch="copy lvb_val.json and extract videos.tar.part.* (concatenated) so that the videos land in videos/",
        module="liteframe_bench.suites.longvideobench.layout",
        metric="lvb_acc (fraction 0-1)",
    ),
    "hlvid": Layout(
        suite="hlvid",
        folder="hlvid",
        tasks=("lfb_hlvid", "lfb_hlvid_strict"),
        annotation="data/test-00000-of-00001.parquet",
        videos="videos/<video_path>",
        source="hub dataset bfshi/HLVid",
        fetch="copy data/test-00000-of-00001.parquet and extract each videos_part_*.tar inside this folder (its "
        "entries already start with videos/, e.g. tar -xf videos_part_0000.tar -C <this folder>)",
        module="liteframe_bench.suites.hlvid.layout",
        metric="hlvid_acc (percent)",
    ),
}

#: Every suite `check` knows. ``synth`` (the generated offline suite) is checked by a hook registered with
#: :func:`register_check` (it has no download layout).
SUITES: tuple[str, ...] = (*LAYOUTS, "synth")

_CHECKS: dict[str, Callable[..., CheckReport]] = {}


def register_check(suite: str, fn: Callable[..., CheckReport]) -> None:
    """Register ``fn(root=None, *, probe_videos=True) -> CheckReport`` as the checker of ``suite`` (e.g. synth)."""
    _CHECKS[suite] = fn


def layout(suite: str) -> Layout:
    """The :class:`Layout` of a real suite; :class:`DataError` listing the allowed names otherwise."""
    if suite not in LAYOUTS:
        raise DataError(f"unknown suite {suite!r}; allowed: {', '.join(SUITES)}")
    return LAYOUTS[suite]


def loader(suite: str):
    """The loader module of a real suite (``liteframe_bench.suites.<name>.layout``)."""
    return importlib.import_module(layout(suite).module)


def _hint(suite: str, folder: Path, *, advise_check: bool = True) -> str:
    lay = LAYOUTS[suite]
    text = (
        f"Get it from the {lay.source}: {lay.fetch}, all under {folder}/ (data root {folder.parent}: set it with "
        f"${DATA_ENV} or --root)."
    )
    return text + (f" Run `lfbench data check {suite}` for a full report." if advise_check else "")


def missing_annotation(suite: str, missing: list[Path], folder: Path, *, advise_check: bool = True) -> DataMissingError:
    """The one error a task raises when its annotation file(s) are missing: what, where, how to get them."""
    names = ", ".join(str(p) for p in missing)
    noun = "annotation file" if len(missing) == 1 else f"{len(missing)} annotation files"
    return DataMissingError(f"{suite}: {noun} missing: {names}. {_hint(suite, folder, advise_check=advise_check)}")


def bad_annotation(suite: str, path: Path, reason: str) -> DataError:
    return DataError(f"{suite}: annotation file {path} is malformed: {reason}")


def require_files(suite: str, files: list[Path], folder: Path) -> None:
    """Raise :func:`missing_annotation` when any of ``files`` is not a file."""
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise missing_annotation(suite, missing, folder)


def read_records(suite: str, path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON array, JSON-lines or parquet annotation file, as dicts (:class:`DataError` if malformed)."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        else:
            text = path.read_text(encoding="utf-8")
            stripped = text.lstrip()
            if stripped.startswith("["):
                rows = json.loads(text)
            elif stripped.startswith("{") and "\n{" not in stripped.rstrip():
                obj = json.loads(text)
                rows = obj.get("data", obj.get("rows")) if isinstance(obj, dict) else obj
            else:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except OSError as e:
        raise bad_annotation(suite, path, f"cannot read ({type(e).__name__}: {e})") from None
    except ValueError as e:
        raise bad_annotation(suite, path, f"cannot parse ({type(e).__name__}: {e})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise bad_annotation(suite, path, "expected a list of records (objects)")
    return rows


def require_keys(suite: str, path: Path, rows: list[dict[str, Any]], keys: tuple[str, ...]) -> None:
    """:class:`DataError` naming the first record that lacks one of ``keys``."""
    for i, row in enumerate(rows):
        lacking = [k for k in keys if k not in row]
        if lacking:
            raise bad_annotation(
                suite, path, f"record {i} lacks {', '.join(lacking)} (expected keys: {', '.join(keys)})"
            )


def load_docs(
    suite: str, root: str | os.PathLike | None = None, warnings: list[str] | None = None
) -> list[dict[str, Any]]:
    """The lmms-eval docs of a real suite, read from its local copy (raises :class:`DataMissingError`).

    Records kept despite a quirk (see each suite's README) add one line each to ``warnings``.
    """
    return loader(suite).load_rows(suite_dir(layout(suite).folder, root), suite=suite, warnings=warnings)


def task_docs(suite: str):
    """``process_docs`` of the real task folders: the local copy's docs as a ``datasets.Dataset``.

    Raises :class:`TaskDataExit` (one clear message, no retries) when the copy is missing, malformed or empty;
    logs a warning per record kept despite a quirk.
    """
    import datasets

    warnings: list[str] = []
    try:
        docs = load_docs(suite, warnings=warnings)
        if not docs:
            lay = layout(suite)
            raise DataError(f"{suite}: the annotations under {suite_dir(lay.folder)} hold no questions")
    except DataError as e:
        raise TaskDataExit(e) from e
    for line in warnings:
        log.warning("%s: %s", suite, line)
    return datasets.Dataset.from_list(docs)


# ----------------------------------------------------------------------------------------------------------
# Check


@dataclass
class CheckReport:
    """What :func:`check` found in one suite's local copy; ``ok`` when nothing is missing or unreadable.

    ``warnings`` name the records kept despite a quirk (file and index); they do not make a copy fail.
    """

    suite: str
    root: str
    annotation: list[str]
    annotation_found: bool
    missing_annotation: list[str] = field(default_factory=list)
    annotation_error: str | None = None
    questions: int | None = None
    expected_videos: int | None = None
    found_videos: int = 0
    missing_count: int = 0
    missing_videos: list[str] = field(default_factory=list)
    unreadable_count: int = 0
    unreadable_videos: list[dict[str, str]] = field(default_factory=list)
    probed: bool = False
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ok: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def check(
    suite: str,
    root: str | os.PathLike | None = None,
    *,
    probe_videos: bool = True,
    max_listed: int = 20,
) -> CheckReport:
    """Validate the local copy of ``suite`` under ``root`` (default: ``$LFBENCH_DATA``).

    Checks that the annotation file(s) exist and parse, counts the distinct videos they name, lists the
    missing ones (first ``max_listed`` + the count) and, with ``probe_videos``, opens every present video
    with :func:`liteframe_bench.video.probe` (no decoding) and lists the unreadable ones with the reason.
    ``videomme_w_subtitle`` also counts the videos without a subtitle file (a note, not a failure: Video-MME
    has videos without subtitles).
    """
    if suite == "synth":
        import liteframe_bench.suites.synth  # noqa: F401  (registers its checker)
    if suite in _CHECKS:
        return _CHECKS[suite](root, probe_videos=probe_videos)
    if suite == "synth":
        raise DataError("no checker is registered for suite 'synth' (see liteframe_bench.data.register_check)")
    lay = layout(suite)
    mod = loader(suite)
    folder = suite_dir(lay.folder, root)
    expected = [Path(p) for p in mod.annotation_files(folder)]
    report = CheckReport(suite=suite, root=str(folder), annotation=[str(p) for p in expected], annotation_found=False)

    if not folder.is_dir():
        report.problems.append(
            f"folder {folder} does not exist: create it and put {lay.annotation} and {lay.videos.split(' ')[0]} "
            f"in it. {_hint(suite, folder, advise_check=False)}"
        )
    missing_ann = [p for p in expected if not p.is_file()]
    report.missing_annotation = [str(p) for p in missing_ann]
    if missing_ann:
        if folder.is_dir():
            report.problems.append(str(missing_annotation(suite, missing_ann, folder, advise_check=False)))
        return _finish(report)
    try:
        docs = mod.load_rows(folder, suite=suite, warnings=report.warnings)
    except DataError as e:
        report.annotation_error = str(e)
        report.problems.append(str(e))
        return _finish(report)
    report.annotation_found = True
    report.questions = len(docs)
    if not docs:
        report.problems.append(f"the annotations hold no questions: {', '.join(report.annotation)}")

    videos = list(dict.fromkeys(Path(mod.video_path(d, folder)) for d in docs))
    report.expected_videos = len(videos)
    present = [v for v in videos if v.is_file()]
    missing = [v for v in videos if not v.is_file()]
    report.found_videos = len(present)
    report.missing_count = len(missing)
    report.missing_videos = [str(v) for v in missing[:max_listed]]
    if missing:
        where = sorted({str(v.parent) for v in missing})
        report.problems.append(
            f"{len(missing)} of {len(videos)} videos missing; they belong in {', '.join(where[:5])}"
            f"{' ...' if len(where) > 5 else ''} (layout: {lay.videos}). {lay.fetch}."
        )
    if probe_videos:
        from liteframe_bench.video import VideoError, probe

        report.probed = True
        bad = []
        for v in present:
            try:
                probe(v)
            except VideoError as e:
                bad.append({"path": str(v), "reason": str(e)})
        report.unreadable_count = len(bad)
        report.unreadable_videos = bad[:max_listed]
        if bad:
            report.problems.append(
                f"{len(bad)} videos cannot be read (corrupt, truncated or not a video): download them again"
            )
    if lay.subtitles and hasattr(mod, "subtitle_path"):
        subs = {Path(mod.subtitle_path(d, folder)) for d in docs}
        without = sum(1 for s in subs if not s.is_file())
        report.notes.append(
            f"{len(subs) - without} of {len(subs)} videos have a subtitle file ({lay.subtitles})"
            + ("; none found: did you unzip subtitle.zip into subtitle/?" if subs and without == len(subs) else "")
        )
    return _finish(report)


def _finish(report: CheckReport) -> CheckReport:
    report.ok = bool(
        report.annotation_found and not report.missing_count and not report.unreadable_count and not report.problems
    )
    return report


def render_check(report: CheckReport):
    """A rich renderable of ``report`` (``rich.console.Console().print(render_check(report))``)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    status = Text("OK", style="bold green") if report.ok else Text("INCOMPLETE", style="bold red")
    head = Text.assemble(f"{report.suite} ", status, f"  {report.root}")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    if report.annotation_found:
        ann = "found"
    elif report.annotation_error:
        ann = "MALFORMED (see the problem below)"
    else:
        ann = "MISSING: " + ", ".join(report.missing_annotation or report.annotation)
    table.add_row("annotation", ann)
    if report.questions is not None:
        table.add_row("questions", str(report.questions))
    if report.expected_videos is not None:
        table.add_row("videos", f"{report.found_videos} of {report.expected_videos} present")
        table.add_row("missing", str(report.missing_count))
        table.add_row("unreadable", str(report.unreadable_count) if report.probed else "not probed")
    parts: list[Any] = [head, table]
    if report.missing_videos:
        more = report.missing_count - len(report.missing_videos)
        parts.append(Text("missing videos:", style="bold"))
        parts.extend(Text(f"  {p}") for p in report.missing_videos)
        if more:
            parts.append(Text(f"  ... and {more} more"))
    if report.unreadable_videos:
        more = report.unreadable_count - len(report.unreadable_videos)
        parts.append(Text("unreadable videos:", style="bold"))
        parts.extend(Text(f"  {u['path']}: {u['reason']}") for u in report.unreadable_videos)
        if more:
            parts.append(Text(f"  ... and {more} more"))
    parts.extend(Text(f"problem: {p}", style="red") for p in report.problems)
    parts.extend(Text(f"warning: {w}", style="yellow") for w in report.warnings)
    parts.extend(Text(f"note: {n}", style="yellow") for n in report.notes)
    return Group(*parts)


__all__ = [
    "DATA_ENV",
    "LAYOUTS",
    "SUITES",
    "CheckReport",
    "DataError",
    "DataMissingError",
    "Layout",
    "TaskDataExit",
    "check",
    "data_root",
    "layout",
    "load_docs",
    "loader",
    "register_check",
    "render_check",
    "suite_dir",
    "task_docs",
]
