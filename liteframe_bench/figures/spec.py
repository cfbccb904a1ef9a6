"""A figure spec (YAML, ``reports/paper.yaml``): loading and checking it, and matching its methods to the results' by
identity."""

from __future__ import annotations

import importlib.resources
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from liteframe_bench import axes, pareto
from liteframe_bench.errors import LfbenchError, SpecError

DEFAULT_SPEC = Path(str(importlib.resources.files("liteframe_bench.reports") / "paper.yaml"))


TOP_KEYS = {"name", "description", "model", "latency", "suites", "seed", "n_boot", "confidence", "figures"}


KIND_KEYS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required keys, optional keys)
    "latency_split": ({"methods", "frames"}, {"suite", "unit"}),
    "latency_split_analytic": ({"methods", "frames"}, {"model", "gpu", "new_tokens", "tiles"}),
    "pareto": ({"methods", "frames"}, {"suites", "latency", "at_scale"}),
    "accuracy_vs_frames": ({"methods", "frames"}, {"suites"}),
    "token_budget": ({"visual_tokens", "ratios"}, {"baseline", "reducer", "tokens_per_frame", "suites"}),
    "accuracy_table": ({"methods", "frames"}, {"suites"}),
    "latency_accuracy_table": ({"rows"}, {"suites", "latency", "reference"}),
}


COMMON_KEYS = {"id", "kind", "title", "caption"}


@lru_cache(maxsize=256)
def canonical_method(spec: str) -> str:
    """The method identity the results store uses: ``wap:ratio=16`` -> ``wap``, ``fastvid:retain=0.1`` ->
    ``fastvid``, ``liteframe:checkpoint=DIR`` -> ``liteframe`` (``checkpoint=random`` is kept: an untrained
    student is another method). Names the registry does not know (e.g. an unloaded plugin) stay as written."""
    from liteframe_bench import registry

    s = str(spec).strip()
    try:
        ms = registry.parse_method_spec(s)
        if ms.name == "baseline" and not ms.params:
            base = "baseline"
        else:
            if ms.entry.kind == "method":
                return registry.identity_spec(s) if ms.at is None else s
            base = registry.canonical_spec(registry.create(ms.base))
        return base + (("," if ":" in base else ":") + f"at={ms.at}" if ms.at else "")
    except (LfbenchError, TypeError, ValueError):
        return s


def is_registered(method: str) -> bool:
    from liteframe_bench import registry

    try:
        name, _ = registry.parse_spec(method)
        registry.get(name)
        return True
    except LfbenchError:
        return False


def located(spec: str) -> bool:
    """Whether a spec names a checkpoint folder (a locator parameter such as ``checkpoint=DIR``)."""
    from liteframe_bench import registry

    try:
        return bool(registry.locators(spec))
    except LfbenchError:
        return False


def written_methods(fig: dict[str, Any]) -> list[str]:
    """Every method spec a figure entry writes (``methods``, ``rows``, ``baseline``), as written."""
    out = [m if isinstance(m, str) else m.get("method") for m in fig.get("methods") or []]
    out += [r.rpartition("@")[0] if isinstance(r, str) else r.get("method") for r in fig.get("rows") or []]
    out.append(fig.get("baseline"))
    return [str(m).strip() for m in out if isinstance(m, str)]


def frames_list(value: Any, where: str) -> list[int]:
    vals = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0 or not float(v).is_integer():
            raise SpecError(f"{where}: frames {v!r} is invalid; allowed: positive integers")
        out.append(int(v))
    if not out:
        raise SpecError(f"{where}: frames is empty")
    return out


def method_frames(fig: dict[str, Any], where: str) -> list[tuple[str, list[int]]]:
    """``methods`` (strings, or ``{method, frames}`` mappings overriding the figure's frames) with frames."""
    frames = frames_list(fig["frames"], where)
    out = []
    for item in fig["methods"] or []:
        if isinstance(item, str):
            out.append((canonical_method(item), frames))
        elif isinstance(item, dict) and "method" in item and set(item) <= {"method", "frames"}:
            out.append((canonical_method(item["method"]), frames_list(item.get("frames", frames), where)))
        else:
            raise SpecError(
                f"{where}: methods entry {item!r} is invalid; allowed: a spec string or "
                "{method: SPEC, frames: [N, ...]}"
            )
    if not out:
        raise SpecError(f"{where}: methods is empty")
    return out


def parse_row(item: Any, where: str) -> tuple[str, int]:
    if isinstance(item, str) and "@" in item:
        m, _, f = item.rpartition("@")
        return canonical_method(m), frames_list(int(f) if f.strip().isdigit() else f, where)[0]
    if isinstance(item, dict) and set(item) == {"method", "frames"}:
        return canonical_method(item["method"]), frames_list(item["frames"], where)[0]
    raise SpecError(f"{where}: row {item!r} is invalid; allowed: 'METHOD@FRAMES' or {{method: M, frames: N}}")


def load_spec(spec: str | os.PathLike | dict[str, Any] | None) -> dict[str, Any]:
    """Read and validate a figure spec (a YAML path or an already parsed dict)."""
    if spec is None:
        spec = DEFAULT_SPEC
    if isinstance(spec, dict):
        data, src = spec, "<dict>"
    else:
        import yaml

        path = Path(spec)
        if not path.is_file():
            raise LfbenchError(f"figure spec {path} does not exist (the paper's is reports/paper.yaml)")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise SpecError(f"{path}: not valid YAML ({e})") from None
        src = str(path)
    if not isinstance(data, dict):
        raise SpecError(f"{src}: a figure spec is a mapping with keys {', '.join(sorted(TOP_KEYS))}")
    extra = set(data) - TOP_KEYS
    if extra:
        raise SpecError(f"{src}: unknown key(s) {', '.join(sorted(extra))}; allowed: {', '.join(sorted(TOP_KEYS))}")
    suites = data.get("suites") or []
    if not isinstance(suites, list) or not suites or not all(isinstance(s, str) for s in suites):
        raise SpecError(f"{src}: suites must be a non-empty list of suite names")
    lat = data.get("latency", "lat_e2e_s")
    if lat not in pareto.LATENCY_COLUMNS:
        raise SpecError(f"{src}: latency={lat!r}; allowed: {', '.join(pareto.LATENCY_COLUMNS)}")
    figs = data.get("figures")
    if not isinstance(figs, list) or not figs:
        raise SpecError(f"{src}: figures must be a non-empty list")
    seen = set()
    for i, f in enumerate(figs):
        where = f"{src}: figures[{i}]"
        if not isinstance(f, dict) or "id" not in f or "kind" not in f:
            raise SpecError(f"{where}: each figure needs an id and a kind")
        where = f"{src}: figure {f['id']!r}"
        if f["id"] in seen:
            raise SpecError(f"{where}: id given twice")
        seen.add(f["id"])
        if f["kind"] not in KIND_KEYS:
            raise SpecError(f"{where}: kind {f['kind']!r} is unknown; allowed: {', '.join(KIND_KEYS)}")
        req, opt = KIND_KEYS[f["kind"]]
        if req - set(f):
            raise SpecError(f"{where}: missing key(s) {', '.join(sorted(req - set(f)))} for kind {f['kind']}")
        extra = set(f) - req - opt - COMMON_KEYS
        if extra:
            raise SpecError(
                f"{where}: unknown key(s) {', '.join(sorted(extra))}; allowed for {f['kind']}: "
                f"{', '.join(sorted(req | opt | COMMON_KEYS))}"
            )
        if f["kind"] == "pareto" and ("latency" in f or "at_scale" in f):
            try:
                axes.parse(f.get("latency", lat), f.get("at_scale"))
            except SpecError as e:
                raise SpecError(f"{where}: {e}") from None
    return {
        "source": src,
        "name": data.get("name", Path(src).stem),
        "model": data.get("model"),
        "latency": lat,
        "suites": list(suites),
        "seed": int(data.get("seed", 0)),
        "n_boot": int(data.get("n_boot", 1000)),
        "confidence": float(data.get("confidence", 0.95)),
        "figures": figs,
    }
