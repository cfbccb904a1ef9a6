"""One registry for methods and reducers: decorators, spec strings, and plugin discovery.

A spec string names a registered entry and sets its parameters: ``wap:ratio=16``,
``prumerge:ratio=16,variant=plus``, ``baseline``. Entries are dataclasses; their fields are the parameters,
typed by annotation and validated by the class's ``__post_init__``.

Everything registers through the same path: the entry-point group ``lfbench.methods`` (the built-ins are
the entry point ``builtin = liteframe_bench.methods``), folders of ``.py`` files given with ``--plugins`` or
the ``LFBENCH_PLUGINS`` environment variable (``os.pathsep``-separated), or a plain import of a module
that uses the decorators.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from liteframe_bench.errors import PluginError, SpecError
from liteframe_bench.interfaces import AUX_INPUTS, CLS_HEADS, INSERTION_POINTS, Method, Reducer

ENTRY_POINT_GROUP = "lfbench.methods"
PLUGINS_ENV = "LFBENCH_PLUGINS"
KINDS = ("method", "reducer")


@dataclass(frozen=True)
class Param:
    """One parameter of a registered entry."""

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    #: the value says where an artifact lives (e.g. a checkpoint folder), not what the method is: left out of
    #: the method's identity in results and figures, except ``keywords`` (values naming a mode, e.g. random)
    locator: bool = False
    keywords: tuple[str, ...] = ()

    def in_identity(self, value: Any) -> bool:
        return not self.locator or str(value) in self.keywords


@dataclass(frozen=True)
class Entry:
    """A registered method or reducer."""

    kind: str
    name: str
    cls: type
    params: tuple[Param, ...]
    summary: str
    reference: str
    source: str

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "summary": self.summary,
            "reference": self.reference,
            "source": self.source,
            "parameters": [
                {"name": p.name, "type": p.type, "default": p.default, "help": p.help}
                | ({"choices": list(p.choices)} if p.choices else {})
                for p in self.params
            ],
        }
        if self.kind == "reducer":  # the contract at default parameters (some depend on parameters)
            c = self.cls()
            out |= {
                "needs": sorted(c.needs),
                "structured": c.structured,
                "ordered": c.ordered,
                "exact": c.exact,
                "default_at": c.default_at,
                "cls_heads": c.cls_heads,
            }
        return out


_ENTRIES: dict[str, Entry] = {}
_entry_points_loaded = False
_loaded_dirs: set[Path] = set()


def _params_of(cls: type) -> tuple[Param, ...]:
    hints = typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name.startswith("_"):
            continue
        tp = hints[f.name]
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        choices = _literal_choices(tp)
        params.append(
            Param(
                f.name,
                _type_name(tp),
                default,
                f.metadata.get("help", ""),
                choices,
                locator=bool(f.metadata.get("locator", False)),
                keywords=tuple(f.metadata.get("keywords", ())),
            )
        )
    return tuple(params)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else tp), True
    return tp, False


def _literal_choices(tp: Any) -> tuple[Any, ...] | None:
    tp, _ = _strip_optional(tp)
    return typing.get_args(tp) if typing.get_origin(tp) is Literal else None


def _type_name(tp: Any) -> str:
    base, optional = _strip_optional(tp)
    if typing.get_origin(base) is Literal:
        name = "|".join(str(c) for c in typing.get_args(base))
    else:
        name = getattr(base, "__name__", str(base))
    return f"{name} (optional)" if optional else name


def _register(kind: str, name: str, base: type):
    def deco(cls: type) -> type:
        if not name or not name.replace("-", "").replace("_", "").isalnum() or not name[0].isalpha():
            raise SpecError(f"cannot register {cls.__qualname__} as {name!r}: names are letters, digits, '-' and '_'")
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"@register_{kind}({name!r}) must decorate a subclass of {base.__name__}")
        if not dataclasses.is_dataclass(cls):
            raise TypeError(
                f"@register_{kind}({name!r}): {cls.__qualname__} must be a @dataclass (its fields are its parameters)"
            )
        if kind == "reducer":
            bad = set(cls.needs) - set(AUX_INPUTS)
            if bad or cls.default_at not in INSERTION_POINTS or cls.cls_heads not in CLS_HEADS:
                raise TypeError(
                    f"reducer {name!r}: needs {sorted(bad)} / default_at {cls.default_at!r} / cls_heads "
                    f"{cls.cls_heads!r} invalid; allowed: needs in {AUX_INPUTS}, default_at in {INSERTION_POINTS}, "
                    f"cls_heads in {CLS_HEADS}"
                )
        source = f"{cls.__module__}.{cls.__qualname__}"
        old = _ENTRIES.get(name)
        if old is not None and old.source != source:
            raise SpecError(
                f"{kind} name {name!r} is already registered by {old.source}; {source} must use another name"
            )
        cls.name = name
        doc = (cls.__doc__ or "").strip()
        summary = doc.splitlines()[0] if doc else ""
        _ENTRIES[name] = Entry(kind, name, cls, _params_of(cls), summary, getattr(cls, "reference", ""), source)
        return cls

    return deco


def register_reducer(name: str):
    """Class decorator: register a :class:`Reducer` dataclass under ``name``."""
    return _register("reducer", name, Reducer)


def register_method(name: str):
    """Class decorator: register a :class:`Method` dataclass under ``name``."""
    return _register("method", name, Method)


# ---------------------------------------------------------------------------------------------- plugins


def load_entry_points() -> None:
    """Import every module named in the ``lfbench.methods`` entry-point group (once per process)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as e:  # a broken plugin must say which one it is
            raise PluginError(
                f"plugin entry point {ep.name!r} = {ep.value!r} (group {ENTRY_POINT_GROUP}) failed to load: "
                f"{type(e).__name__}: {e}"
            ) from e


def load_plugin_dir(path: str | os.PathLike) -> list[str]:
    """Import every ``*.py`` file in ``path`` (sorted, not recursive); returns the names they registered."""
    d = Path(path).expanduser().resolve()
    if not d.is_dir():
        raise PluginError(f"plugin folder {str(path)!r} does not exist or is not a directory")
    if d in _loaded_dirs:
        return []
    before = set(_ENTRIES)
    for file in sorted(d.glob("*.py")):
        digest = hashlib.sha1(str(file).encode()).hexdigest()[:10]
        modname = f"lfbench_plugins.{file.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(modname, file)
        if spec is None or spec.loader is None:
            raise PluginError(f"plugin file {file} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        try:
            spec.loader.exec_module(module)
        except SpecError:
            del sys.modules[modname]
            raise
        except Exception as e:
            del sys.modules[modname]
            raise PluginError(f"plugin file {file} failed to import: {type(e).__name__}: {e}") from e
    _loaded_dirs.add(d)
    return sorted(set(_ENTRIES) - before)


def load_plugins(dirs: typing.Iterable[str | os.PathLike] = ()) -> None:
    """Load entry points, the ``LFBENCH_PLUGINS`` folders, then ``dirs``."""
    load_entry_points()
    env = [p for p in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if p]
    for d in [*env, *dirs]:
        load_plugin_dir(d)


# ------------------------------------------------------------------------------------------------ lookup


def entries(kind: str | None = None) -> list[Entry]:
    """Every registered entry (plugins loaded first), sorted by kind then name."""
    if kind is not None and kind not in KINDS:
        raise SpecError(f"kind {kind!r} is not one of {KINDS}")
    load_plugins()
    return sorted((e for e in _ENTRIES.values() if kind in (None, e.kind)), key=lambda e: (e.kind, e.name))


def get(name: str) -> Entry:
    load_plugins()
    if name not in _ENTRIES:
        raise SpecError(f"unknown method or reducer {name!r}; registered: {', '.join(sorted(_ENTRIES)) or '(none)'}")
    return _ENTRIES[name]


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``name:key=value,key=value`` (``;`` also separates parameters) into a name and raw values."""
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"empty spec {spec!r}; expected name or name:key=value,...")
    name, _, rest = spec.strip().partition(":")
    params: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.replace(";", ",").split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise SpecError(f"in spec {spec!r}: {item!r} is not key=value")
        if key in params:
            raise SpecError(f"in spec {spec!r}: parameter {key!r} given twice")
        params[key] = value.strip()
    return name.strip(), params


@dataclass(frozen=True)
class MethodSpec:
    """A method spec taken apart: ``tome:ratio=16,at=proj`` -> name ``tome``, params ``{ratio: 16}``, at ``proj``.

    The one parser of run specs (the pipeline's ``build_method``, the cost model and the figures use it): a
    registered method name, or a reducer spec meaning baseline + that reducer, whose ``at=vit|mlp|proj`` is the
    insertion point, not a parameter of the reducer. Values stay raw strings (``create`` types them).
    """

    name: str
    params: dict[str, str]
    at: str | None = None

    @property
    def base(self) -> str:
        """The spec without its insertion point: what ``create`` builds (``tome:ratio=16``)."""
        return self.name + (":" + ",".join(f"{k}={v}" for k, v in self.params.items()) if self.params else "")

    @property
    def entry(self) -> Entry:
        """The registered method or reducer (SpecError naming what is registered when unknown)."""
        return get(self.name)

    def insertion_point(self, reducer: Reducer, at: str | None = None) -> str:
        """Where ``reducer`` (built from this spec) runs: ``at`` if given, else the spec's, else the reducer's
        ``default_at``; SpecError for an unknown point or a reducer without a regular-grid output at ``vit``."""
        where = at or self.at or reducer.default_at
        check_insertion_point(reducer, where)
        return where


def parse_method_spec(spec: str) -> MethodSpec:
    """:class:`MethodSpec` of ``spec`` (``name[:key=value,...][,at=vit|mlp|proj]``); SpecError if malformed."""
    name, params = parse_spec(spec)
    at = params.pop("at", None)
    return MethodSpec(name, params, at)


def check_insertion_point(reducer: Reducer, at: str) -> None:
    """SpecError unless ``reducer`` can run at ``at`` (one of ``INSERTION_POINTS``; ``vit`` needs a regular grid)."""
    if at not in INSERTION_POINTS:
        raise SpecError(f"at={at!r} is invalid; allowed: {', '.join(INSERTION_POINTS)}")
    if at == "vit" and not reducer.structured:
        raise SpecError(
            f"reducer {reducer.name!r} does not output a regular grid, so it cannot run on the ViT grid before the "
            "pixel shuffle; allowed: at=mlp, at=proj"
        )


def split_specs(text: str) -> list[str]:
    """Split a comma-separated list of specs: ``baseline,wap:ratio=16,prumerge:ratio=16,variant=plus``.

    A piece with ``=`` but no ``:`` continues the previous spec's parameters.
    """
    specs: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if "=" in piece and ":" not in piece:
            if not specs:
                raise SpecError(f"in spec list {text!r}: parameter {piece!r} comes before any method name")
            specs[-1] += ("," if ":" in specs[-1] else ":") + piece
        else:
            specs.append(piece)
    return specs


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(entry: Entry, p: Param, tp: Any, raw: Any) -> Any:
    base, optional = _strip_optional(tp)
    where = f"{entry.kind} {entry.name!r} parameter {p.name!r}"
    if not isinstance(raw, str):
        return raw
    if optional and raw.lower() in {"none", "null", ""}:
        return None
    if typing.get_origin(base) is Literal:
        for choice in typing.get_args(base):
            if str(choice) == raw:
                return choice
        raise SpecError(f"{where}: {raw!r} is not one of {', '.join(map(str, typing.get_args(base)))}")
    try:
        if base is bool:
            if raw.lower() in _TRUE | _FALSE:
                return raw.lower() in _TRUE
            raise ValueError
        if base is int:
            f = float(raw)
            if not f.is_integer():
                raise ValueError
            return int(f)
        if base is float:
            return float(raw)
        if base is str:
            return raw
    except ValueError:
        allowed = "true/false" if base is bool else f"a{'n' if base is int else ''} {base.__name__}"
        raise SpecError(f"{where}: {raw!r} is not {allowed}") from None
    raise SpecError(f"{where}: type {p.type} cannot be set from a spec string")


def create(spec: str, **overrides: Any) -> Any:
    """Build a registered method or reducer from a spec string such as ``wap:ratio=16``.

    ``overrides`` set parameters directly (already typed). Raises :class:`SpecError` naming the bad field and
    the allowed values for an unknown name, an unknown parameter, a mistyped or an impossible value.
    """
    name, raw = parse_spec(spec)
    entry = get(name)
    hints = typing.get_type_hints(entry.cls)
    known = {p.name: p for p in entry.params}
    kwargs: dict[str, Any] = {}
    for key, value in {**raw, **overrides}.items():
        if key not in known:
            allowed = ", ".join(f"{p.name}={p.default}" for p in entry.params) or "(no parameters)"
            raise SpecError(f"{entry.kind} {name!r} has no parameter {key!r}; allowed: {allowed}")
        kwargs[key] = _coerce(entry, known[key], hints[key], value)
    try:
        return entry.cls(**kwargs)
    except SpecError as e:
        raise SpecError(f"in spec {spec!r}: {e}") from None


def canonical_spec(obj: Any, *, identity: bool = False) -> str:
    """The spec string that rebuilds ``obj``, listing only parameters that differ from their defaults.

    ``identity=True``: what ``obj`` is rather than how to rebuild it (the ``method`` of results and figures):
    locator parameters such as a checkpoint folder are left out, their keyword values (``random``) kept.
    """
    entry = get(type(obj).name)
    fmt = lambda v: f"{v:g}" if isinstance(v, float) else str(v)
    changed = [
        f"{p.name}={fmt(getattr(obj, p.name))}"
        for p in entry.params
        if getattr(obj, p.name) != p.default and (not identity or p.in_identity(getattr(obj, p.name)))
    ]
    return entry.name + (":" + ",".join(changed) if changed else "")


def locators(spec: str) -> dict[str, str]:
    """The locator parameters (e.g. ``checkpoint=DIR``) a spec string sets, keyword values excluded."""
    name, raw = parse_spec(spec)
    return {p.name: str(raw[p.name]) for p in get(name).params if p.name in raw and not p.in_identity(raw[p.name])}


def identity_spec(spec: str) -> str:
    """The identity (``canonical_spec(..., identity=True)``) of a spec string. A spec that cannot be built (e.g.
    a method whose required checkpoint is not given) keeps its other parameters as written."""
    name, raw = parse_spec(spec)
    entry = get(name)
    try:
        return canonical_spec(create(spec), identity=True)
    except SpecError:
        drop = {p.name for p in entry.params if p.name in raw and not p.in_identity(raw[p.name])}
        kept = [f"{k}={v}" for k, v in raw.items() if k not in drop]
        return name + (":" + ",".join(kept) if kept else "")
