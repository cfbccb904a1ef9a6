import dataclasses

import pytest

import liteframe_bench as lfb
from liteframe_bench import registry


def test_builtins_register_through_the_entry_point():
    import importlib.metadata

    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="lfbench.methods")}
    assert eps.get("builtin") == "liteframe_bench.methods"
    names = {e.name for e in lfb.entries("reducer")}
    assert {"identity", "avgpool", "maxpool", "subsample", "wap", "tome", "prumerge", "fastvid"} <= names


@pytest.mark.parametrize(
    "spec, name, params",
    [
        ("wap", "wap", {}),
        ("wap:ratio=16", "wap", {"ratio": "16"}),
        (" prumerge : ratio=16 , variant=plus ", "prumerge", {"ratio": "16", "variant": "plus"}),
        ("tome:ratio=16;clip=2", "tome", {"ratio": "16", "clip": "2"}),
    ],
)
def test_parse_spec(spec, name, params):
    assert lfb.parse_spec(spec) == (name, params)


@pytest.mark.parametrize(
    "spec, name, params, at, base",
    [
        ("baseline", "baseline", {}, None, "baseline"),
        ("tome:ratio=16,at=proj", "tome", {"ratio": "16"}, "proj", "tome:ratio=16"),
        ("wap:at=vit", "wap", {}, "vit", "wap"),
        (" prumerge : ratio=16 ; variant=plus ", "prumerge", {"ratio": "16", "variant": "plus"}, None, None),
    ],
)
def test_parse_method_spec_takes_the_insertion_point_out(spec, name, params, at, base):
    ms = lfb.parse_method_spec(spec)
    assert (ms.name, ms.params, ms.at) == (name, params, at)
    assert ms.base == (base or "prumerge:ratio=16,variant=plus")
    assert ms.entry.name == name


def test_insertion_point_order_and_errors():
    ms = lfb.parse_method_spec("tome:ratio=16,at=proj")
    tome = lfb.create(ms.base)
    assert ms.insertion_point(tome) == "proj"  # the spec's at over the reducer's default
    assert ms.insertion_point(tome, "mlp") == "mlp"  # an explicit at over the spec's
    assert lfb.parse_method_spec("tome:ratio=16").insertion_point(tome) == tome.default_at
    with pytest.raises(lfb.SpecError, match="at='llm' is invalid; allowed: vit, mlp, proj"):
        ms.insertion_point(tome, "llm")
    with pytest.raises(lfb.SpecError, match="regular grid"):
        ms.insertion_point(tome, "vit")
    with pytest.raises(lfb.SpecError, match="unknown method or reducer 'nope'"):
        _ = lfb.parse_method_spec("nope:at=vit").entry


@pytest.mark.parametrize("bad", ["", ":", "wap:ratio", "wap:=3", "wap:ratio=1,ratio=2"])
def test_parse_spec_rejects(bad):
    with pytest.raises(lfb.SpecError):
        lfb.create(bad)


def test_split_specs_keeps_parameters_with_their_method():
    text = "baseline,avgpool:ratio=16,prumerge:ratio=16,variant=plus,wap,heads=weights"
    assert lfb.split_specs(text) == [
        "baseline",
        "avgpool:ratio=16",
        "prumerge:ratio=16,variant=plus",
        "wap:heads=weights",
    ]
    with pytest.raises(lfb.SpecError, match="before any method"):
        lfb.split_specs("ratio=16,wap")


def test_create_types_parameters():
    r = lfb.create("wap:ratio=64,heads=weights,tau=0.5")
    assert (r.ratio, r.heads, r.tau) == (64.0, "weights", 0.5)
    assert lfb.create("wap:tokens=128").tokens == 128
    assert lfb.create("wap:block=none").block is None
    assert lfb.create("wap", ratio=4).ratio == 4


@pytest.mark.parametrize(
    "spec, pattern",
    [
        ("nosuch", r"unknown method or reducer 'nosuch'; registered: .*wap"),
        ("wap:foo=1", r"no parameter 'foo'; allowed: ratio=16.0.*heads=logits"),
        ("wap:ratio=abc", r"parameter 'ratio': 'abc' is not a float"),
        ("wap:tokens=1.5", r"parameter 'tokens': '1.5' is not an int"),
        ("wap:heads=max", r"parameter 'heads': 'max' is not one of logits, weights"),
        ("wap:ratio=3", r"ratio=3.0 is invalid; allowed: one of \[1, 2, 4, 8, 16"),
        ("wap:ratio=0.5", r"ratio=0.5 is invalid; allowed: a number >= 1"),
        ("wap:tau=0", r"tau=0.0 is invalid; allowed: a positive temperature"),
        ("tome:sort=maybe", r"'maybe' is not true/false"),
    ],
)
def test_bad_specs_name_field_and_allowed(spec, pattern):
    with pytest.raises(lfb.SpecError, match=pattern):
        lfb.create(spec)


def test_canonical_spec_round_trips_every_reducer():
    for e in lfb.entries("reducer"):
        obj = lfb.create(e.name)
        assert lfb.canonical_spec(obj) == e.name
        assert lfb.create(lfb.canonical_spec(obj)) == obj
    r = lfb.create("wap:ratio=64,heads=weights")
    assert lfb.canonical_spec(r) == "wap:ratio=64,heads=weights"
    assert lfb.create(lfb.canonical_spec(r)) == r


def test_register_rejects_clashes_and_non_dataclasses():
    @dataclasses.dataclass
    class Other(lfb.Reducer):
        def target_tokens(self, T, H, W):
            return 1

        def reduce(self, grid, generator=None):
            raise AssertionError

    with pytest.raises(lfb.SpecError, match="already registered by liteframe_bench.methods.reducers.wap.WAP"):
        lfb.register_reducer("wap")(Other)

    class NotADataclass(lfb.Reducer):
        pass

    with pytest.raises(TypeError, match="must be a @dataclass"):
        lfb.register_reducer("not-a-dataclass")(NotADataclass)
    with pytest.raises(TypeError, match="subclass of Method"):
        lfb.register_method("not-a-method")(Other)
    with pytest.raises(lfb.SpecError, match="names are letters"):
        lfb.register_reducer("bad name")(Other)
    assert "not-a-dataclass" not in {e.name for e in lfb.entries()}


def test_entries_json_lists_parameters_and_reference():
    rows = {e.name: e.to_json() for e in lfb.entries()}
    wap = rows["wap"]
    assert wap["kind"] == "reducer" and wap["needs"] == ["cls_attn"] and wap["default_at"] == "vit"
    assert {
        "name": "tau",
        "type": "float",
        "default": 1.0,
        "help": "softmax temperature over the block's logits",
    } in wap["parameters"]
    for row in rows.values():
        assert row["reference"] and row["summary"], row["name"]
        assert all(p["help"] for p in row["parameters"]), row["name"]


def test_unknown_kind():
    with pytest.raises(lfb.SpecError, match="kind 'nope' is not one of"):
        registry.entries("nope")
