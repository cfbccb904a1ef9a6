"""lmms-eval model ``lfbench``: any registered method as an lmms-eval model, one code path for eval and sweep.

Registered through the entry-point group ``lmms_eval.models`` (``lfbench = liteframe_bench.lmms_adapter:manifest``)::

    lmms-eval --model lfbench --model_args method=wap:ratio=16,frames=64,model=tiny --tasks synth_tiny \\
        --include_path $(python -c "import liteframe_bench.suites as s; print(s.__path__[0])")

A spec with several parameters separates them with ``;`` (or quote the value):
``method=prumerge:ratio=16;variant=plus``. Every sample's per-stage timings, token counts and error go to a
sidecar JSONL, one line per sample, flushed as it is written: ``sidecar=PATH`` or ``$LFBENCH_SIDECAR``; without
either, a new ``lfbench_samples_<time>_<pid>.jsonl`` in lmms-eval's ``--output_path`` folder when the lmms-eval
command line names one, else in ``<tmp>/lfbench/`` (never the current folder; a warning names the file).
Accuracy mode: decoded clips are reused across samples through a bounded cache, so the sidecar's ``decode`` time
is near zero on a hit, ``clip_cached`` says which; a video's visual tokens are reused by the questions that share
it (same method, frames, tiles; ``tokens_cached``: no decode or encode stage then), and so is the KV cache of
the prompt before the question (:class:`~liteframe_bench.pipeline.PrefixCache`). Latency comes from the
profiler's timing mode, which never caches. A sample whose video is missing or unreadable (including built-in
task helpers that call ``sys.exit()``) is answered with an empty string, counted wrong by the task's scorer, and
its error recorded; the run goes on.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from lmms_eval.api.instance import GenerationResult, TokenCounts
from lmms_eval.api.model import lmms

from liteframe_bench import registry
from liteframe_bench.errors import LfbenchError
from liteframe_bench.pipeline import PrefixCache, VideoLLM
from liteframe_bench.stages import StageClock

MODEL_ID = "lfbench"
SIDECAR_ENV = "LFBENCH_SIDECAR"
#: Videos whose visual tokens an accuracy run keeps (lmms-eval's ``cluster_key`` puts a video's questions together).
TOKEN_CACHE_VIDEOS = 4

log = logging.getLogger(__name__)


def _lmms_eval_output_path(argv: list[str]) -> Path | None:
    """The ``--output_path`` of an lmms-eval command line (``lmms-eval ...`` or ``python -m lmms_eval ...``)."""
    prog = Path(argv[0]) if argv else Path()
    if prog.name != "lmms-eval" and "lmms_eval" not in prog.parts:
        return None
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "--output_path" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--output_path="):
            value = arg.split("=", 1)[1]
        else:
            continue
        path = Path(value).expanduser()
        return path.parent if path.suffix in (".json", ".jsonl") else path
    return None


def default_sidecar(argv: list[str] | None = None) -> Path:
    """Where the sidecar goes when no path is given: beside lmms-eval's results if known, else a temp folder."""
    folder = _lmms_eval_output_path(sys.argv if argv is None else argv)
    if folder is None:
        folder = Path(tempfile.gettempdir()) / "lfbench"
    return folder / f"lfbench_samples_{time.strftime('%Y%m%d-%H%M%S')}_{os.getpid()}.jsonl"


def manifest():
    """Entry-point payload for lmms-eval's model registry."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, simple_class_path="liteframe_bench.lmms_adapter.LfbenchModel")


class LfbenchModel(lmms):
    """An lfbench method (backbone + optional reducer) answering lmms-eval ``generate_until`` requests.

    ``method``: a spec string (``model_args``: built here on ``backbone``, else on the backbone ``model`` names),
    or a method already built with ``pipeline.build_method`` (a sweep cell hands its own; ``model``, ``device``,
    ``dtype`` and ``tiles`` are then the method's).
    """

    is_simple = True

    def __init__(
        self,
        method: Any = "baseline",
        frames: int = 8,
        model: str = "mini",
        device: str = "cpu",
        dtype: str = "auto",
        max_new_tokens: int = 16,
        tiles: str = "1x1",
        sidecar: str | None = None,
        plugins: str | None = None,
        run_id: str | None = None,
        backbone: Any = None,
        clip_cache: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        from liteframe_bench.backbone import load_backbone
        from liteframe_bench.pipeline import build_method, parse_tiles

        if plugins:
            registry.load_plugins(str(plugins).split(os.pathsep))
        if int(frames) < 1 or int(max_new_tokens) < 1:
            raise LfbenchError(f"frames={frames}, max_new_tokens={max_new_tokens}; allowed: positive integers")
        self.frames = int(frames)
        self.max_new_tokens = int(max_new_tokens)
        if isinstance(method, VideoLLM):  # built by the caller (a sweep cell): used as it is, on its own backbone
            if backbone is not None and method.backbone is not backbone:
                raise LfbenchError(f"method {method.spec!r} is bound to another backbone than the one given")
            self.backbone, self.method = method.backbone, method
        else:
            self.backbone = backbone if backbone is not None else load_backbone(str(model), device=device, dtype=dtype)
            self.method = build_method(str(method), self.backbone, tiles=parse_tiles(tiles))
        self.run_id = run_id
        given = sidecar or os.environ.get(SIDECAR_ENV)
        self.sidecar = Path(given) if given else default_sidecar()
        self.sidecar.parent.mkdir(parents=True, exist_ok=True)
        if not given:
            log.warning(
                "lfbench: per-sample records (timings, token counts, errors) go to %s (set sidecar=PATH in "
                "model_args or $%s to choose)",
                self.sidecar,
                SIDECAR_ENV,
            )
        self.ignored_args = sorted(kwargs)
        # Accuracy mode may reuse decoded clips (timed runs never do): one cache per model, or shared (sweep).
        from liteframe_bench.video import ClipCache

        self.clip_cache = clip_cache if clip_cache is not None else ClipCache()
        # ... and a video's visual tokens across the questions that share it (same method, frames and tiles)
        self._tokens: OrderedDict[tuple, Any] = OrderedDict()

    def clean(self) -> None:
        """lmms-eval's default deletes every nn.Module attribute; keep ours so the object can be reused."""

    # ------------------------------------------------------------------------------------------------

    def _video(self, doc_to_visual, doc) -> str:
        try:
            visuals = doc_to_visual(doc)
        except SystemExit as e:  # some built-in helpers sys.exit() on a missing video
            raise LfbenchError(f"the task's doc_to_visual exited ({e.code!r}): video missing") from None
        except Exception as e:
            raise LfbenchError(f"the task's doc_to_visual failed: {type(e).__name__}: {e}") from None
        while isinstance(visuals, (list, tuple)):
            if len(visuals) != 1:
                raise LfbenchError(f"expected one video per sample, got {len(visuals)} visuals")
            visuals = visuals[0]
        if not isinstance(visuals, (str, os.PathLike)):
            raise LfbenchError(f"expected a video path from doc_to_visual, got {type(visuals).__name__}")
        return str(visuals)

    def answer(self, context: str, doc_to_visual, doc, gen_kwargs: dict, *, task: str = "", doc_id: Any = None):
        """One sample: returns (text, record) where record holds timings, token counts and any error."""
        record: dict[str, Any] = {
            "task": task,
            "doc_id": doc_id,
            "method": self.method.spec,
            "frames": self.frames,
            "run_id": self.run_id,
        }
        max_new = int(gen_kwargs.get("max_new_tokens") or self.max_new_tokens)
        clock = StageClock(self.backbone.device)
        t0 = time.perf_counter()
        text = ""
        try:
            path = self._video(doc_to_visual, doc)
            record["video"] = path
            key = (path, self.frames, self.method.tiles)
            cached = self._tokens.get(key)
            record["tokens_cached"] = cached is not None
            if cached is None:
                with clock.stage("decode"):
                    clip, record["clip_cached"] = self.clip_cache.load(
                        path, self.frames, image_size=self.backbone.image_size, tiles=self.method.tiles
                    )
                cached = self._tokens[key] = (self.method.encode(clip, clock=clock), PrefixCache())
                while len(self._tokens) > TOKEN_CACHE_VIDEOS:
                    self._tokens.popitem(last=False)
            else:
                self._tokens.move_to_end(key)
            tokens, prefix = cached
            gen = self.method.generate(tokens, context, max_new, clock=clock, prefix=prefix)
            text = gen.text
            record |= {
                "visual_tokens": tokens.num_tokens,
                "tokens_before": tokens.tokens_before,
                "distinct_frames": tokens.distinct_frames,
                "prompt_tokens": gen.prompt_tokens,
                "new_tokens": gen.new_tokens,
                "error": None,
            }
        except (LfbenchError, OSError) as e:
            record["error"] = f"{type(e).__name__}: {e}"
        record["timings"] = clock.results()
        record["wall_s"] = time.perf_counter() - t0
        record["prediction"] = text
        return text, record

    def generate_until(self, requests) -> list[GenerationResult]:
        from tqdm.auto import tqdm

        out: list[GenerationResult] = []
        with self.sidecar.open("a") as log:
            for req in tqdm(requests, desc=f"lfbench {self.method.spec} @ {self.frames}f", leave=False):
                context, gen_kwargs, doc_to_visual, doc_id, task, split = req.args
                doc = self.task_dict[task][split][doc_id]
                text, record = self.answer(
                    context, doc_to_visual, doc, dict(gen_kwargs or {}), task=task, doc_id=doc_id
                )
                log.write(json.dumps(record, default=str) + "\n")
                log.flush()
                counts = TokenCounts(input_tokens=record.get("prompt_tokens"), output_tokens=record.get("new_tokens"))
                out.append(GenerationResult(text=text, token_counts=counts))
        return out

    def loglikelihood(self, requests):
        raise NotImplementedError("the lfbench model answers generate_until tasks only (multiple choice by letter)")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("the lfbench model answers single-round generate_until tasks only")
