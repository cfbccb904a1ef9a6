"""The LiteFrame student encoder: size, shapes, padding, temporal convolutions, save/load, config errors, FLOPs."""

import json

import pytest
import torch

from liteframe_bench.errors import SpecError
from liteframe_bench.methods.liteframe.student import (
    LiteFrameStudent,
    StudentConfig,
    StudentOutput,
    count_parameters,
    load_student,
    save_student,
    student_flops,
)

DEFAULT_PARAMS = 87_149_824  # exact count of the default StudentConfig (paper: 87M)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread. On 2 shared, busy cores OpenMP's second thread only adds waits (~100x per op)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_model(seed: int = 0, random_convs: bool = True) -> LiteFrameStudent:
    """The tiny student with random (non-zero) temporal/downsampling convolutions, so they show in the output."""
    torch.manual_seed(seed)
    m = LiteFrameStudent(StudentConfig.tiny()).eval()
    if random_convs:
        with torch.no_grad():
            for layer in m.layers:
                for mod in (layer.temporal, layer.downsample):
                    if mod is not None:
                        mod.conv.weight.normal_(0, 0.5)
                        mod.conv.bias.normal_(0, 0.1)
    return m


def clip(frames: int, seed: int = 0, size: int = 112) -> torch.Tensor:
    return torch.randn(1, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------- default size


def test_default_parameter_count_on_meta():
    with torch.device("meta"):
        m = LiteFrameStudent(StudentConfig())
    n = count_parameters(m)
    assert n == DEFAULT_PARAMS
    assert abs(n - 87e6) / 87e6 < 0.03  # the paper's 87M
    # ViT-B blocks dominate: 12 x 7,087,872
    assert sum(count_parameters(layer.spatial) for layer in m.layers) == 12 * 7_087_872


def test_default_output_grid_and_meta_forward():
    cfg = StudentConfig()
    with torch.device("meta"):
        m = LiteFrameStudent(cfg)
        assert m.temporal_stride() == 4
        assert m.output_grid(64) == (16, 16, 16)
        assert m.output_grid(8) == (2, 16, 16)
        assert m.output_grid(5) == (2, 16, 16)
        out = m(torch.empty(1, 8, 3, 448, 448))
    assert isinstance(out, StudentOutput)
    assert tuple(out.grid.shape) == (1, 2, 16, 16, 1024) and out.padded_frames == 0
    assert cfg.out_width == 1024


def test_flops_per_frame_ratio_vs_internvit_300m():
    from liteframe_bench.bench.encoders import teacher_flops

    s = student_flops(StudentConfig(), frames=8) / 8
    t = teacher_flops(frames=8) / 8
    assert 723e9 < t < 724e9  # agrees with lfbench's analytic cost model (1.23 + 619.08 + 103.28 GFLOP)
    assert s / t <= 0.15, f"student {s / 1e9:.2f} vs teacher {t / 1e9:.2f} GFLOP per frame"


# ------------------------------------------------------------------------------------------- tiny forward


def test_tiny_shapes_and_padding():
    m = tiny_model()
    with torch.no_grad():
        out = m(clip(8))
        assert tuple(out.grid.shape) == (1, 2, 4, 4, 32) and out.padded_frames == 0
        out6 = m(clip(6))
    assert out6.padded_frames == 2 and m.output_grid(6) == (2, 4, 4)
    assert tuple(out6.grid.shape) == (1, 2, 4, 4, 32)
    # padding repeats the last frame: identical to passing the repeated frames explicitly
    x = clip(6)
    explicit = torch.cat([x, x[:, -1:], x[:, -1:]], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(m(x).grid, m(explicit).grid)
        one = m(clip(1))
    assert one.padded_frames == 3 and tuple(one.grid.shape) == (1, 1, 4, 4, 32)


def test_batch_is_independent_and_deterministic():
    m = tiny_model()
    a, b = clip(4, seed=1), clip(4, seed=2)
    with torch.no_grad():
        both = m(torch.cat([a, b])).grid
        torch.testing.assert_close(both[0:1], m(a).grid, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(both[1:2], m(b).grid, rtol=1e-5, atol=1e-5)
        assert torch.equal(m(a).grid, m(a).grid)
    torch.testing.assert_close(tiny_model(seed=3)(a).grid, tiny_model(seed=3)(a).grid, rtol=0, atol=0)


def test_temporal_conv_runs_only_while_t_above_1():
    m = tiny_model()
    # tiny: 6 layers, temporal stride 2 after blocks 2 and 4; with 4 frames T = 4, 4, 2, 2, 1, 1
    assert all(layer.temporal is not None for layer in m.layers)  # present everywhere (temporal_after=None)
    assert m.temporal_conv_active(4) == [True, True, True, True, False, False]
    assert m.temporal_conv_active(8) == [True] * 6
    calls = []
    hooks = [
        layer.temporal.register_forward_hook(lambda mod, inp, out, i=i: calls.append((i, inp[0].shape[1])))
        for i, layer in enumerate(m.layers)
    ]
    with torch.no_grad():
        m(clip(4))
    for h in hooks:
        h.remove()
    assert calls == [(0, 4), (1, 4), (2, 2), (3, 2)]
    # configurable placement
    only = LiteFrameStudent(StudentConfig(**{**StudentConfig.tiny().to_json(), "temporal_after": [1, 3]}))
    assert [layer.temporal is not None for layer in only.layers] == [True, False, True, False, False, False]
    assert only.temporal_conv_active(4) == [True, False, True, False, False, False]


def test_temporal_conv_mixes_neighbouring_frames_only():
    """With the temporal convs on (kernel 3) a change in the last of 8 frames reaches earlier output steps only
    through them; with them zeroed, frames interact only inside the downsampling windows (4 frames each)."""
    x = clip(8)
    y = x.clone()
    y[:, 7] += 1.0
    with torch.no_grad():
        m = tiny_model()
        d = (m(x).grid - m(y).grid).abs().amax(dim=(0, 2, 3, 4))
        assert d[0] > 0 and d[1] > 0  # frame 7 reaches output step 0 through the temporal convolutions
        for layer in m.layers:
            layer.temporal.conv.weight.zero_()
            layer.temporal.conv.bias.zero_()
        d = (m(x).grid - m(y).grid).abs().amax(dim=(0, 2, 3, 4))
    assert d[0] == 0 and d[1] > 0


def test_temporal_conv_equals_conv1d_with_positions_in_the_batch():
    """The channels-last (k, 1) conv2d path is the plain Conv1d over [B*H*W, C, T]; same for the downsampling
    branch against Conv3d/AvgPool3d on [B, C, T, H, W]."""
    from liteframe_bench.methods.liteframe.student import Downsample, TemporalConv

    torch.manual_seed(0)
    mod = TemporalConv(16, kernel=5)
    torch.nn.init.normal_(mod.conv.weight)
    torch.nn.init.normal_(mod.conv.bias)
    x = torch.randn(2, 6, 3, 4, 16)
    B, T, H, W, C = x.shape
    y = mod.norm(x).permute(0, 2, 3, 4, 1).reshape(B * H * W, C, T)
    ref = x + mod.conv(y).reshape(B, H, W, C, T).permute(0, 4, 1, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(mod(x), ref, rtol=1e-5, atol=1e-5)
    down = Downsample(16, (2, 3, 2))
    torch.nn.init.normal_(down.conv.weight)
    xc = x.permute(0, 4, 1, 2, 3)
    ref = torch.nn.functional.avg_pool3d(xc, (2, 3, 2)) + down.conv(down.norm(x).permute(0, 4, 1, 2, 3))
    with torch.no_grad():
        out = down(x)
    assert out.shape == (2, 3, 1, 2, 16)
    torch.testing.assert_close(out, ref.permute(0, 2, 3, 4, 1), rtol=1e-5, atol=1e-5)


def test_fresh_model_is_framewise_vit_plus_average_pooling():
    """Zero-initialised conv branches: temporal convs start as identities and downsampling as average pooling,
    so frames interact only inside the 4-frame downsampling windows."""
    m = tiny_model(random_convs=False)
    convs = [mod.conv for layer in m.layers for mod in (layer.temporal, layer.downsample) if mod is not None]
    assert len(convs) == 8 and all(not c.weight.any() and not c.bias.any() for c in convs)
    x = clip(8)
    y = x.clone()
    y[:, 7] += 1.0
    with torch.no_grad():
        d = (m(x).grid - m(y).grid).abs().amax(dim=(0, 2, 3, 4))
    assert d[0] == 0 and d[1] > 0


def test_every_parameter_gets_a_gradient_from_a_fresh_model():
    """Zero-initialised branches still train: one backward reaches every parameter (8 frames: T > 1 everywhere)
    except the LayerNorms inside the zero branches, which get gradients once the convolutions are non-zero."""
    m = tiny_model(random_convs=False).train()
    m(clip(8)).grid.square().mean().backward()
    missing = {n for n, p in m.named_parameters() if p.grad is None or not p.grad.any()}
    branch_norms = {n for n, _ in m.named_parameters() if ".norm." in n and (".temporal." in n or ".downsample." in n)}
    assert missing == branch_norms and len(branch_norms) == 2 * 8


def test_save_load_round_trip(tmp_path):
    m = tiny_model(seed=5)
    folder = save_student(m, tmp_path / "student")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text())["width"] == 32
    with open(folder / "model.safetensors", "rb") as f:  # safetensors header, not a pickle
        header_len = int.from_bytes(f.read(8), "little")
        assert json.loads(f.read(header_len))["__metadata__"]["format"] == "liteframe-student/1"
    loaded = load_student(folder)
    assert loaded.cfg == m.cfg
    assert all(p.requires_grad and p.device.type == "cpu" for p in loaded.parameters())
    x = clip(6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).grid, m(x).grid, rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_student(tmp_path / "nowhere")


def test_config_json_round_trip():
    cfg = StudentConfig(downsample_strides=((2, 2, 2), (1, 2, 2)), temporal_after=(1, 2))
    again = StudentConfig.from_json(json.loads(json.dumps(cfg.to_json())))
    assert again == cfg and again.downsample_strides == ((2, 2, 2), (1, 2, 2))
    assert again.output_hw == (8, 8) and again.temporal_stride == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"heads": 5}, "heads"),
        ({"downsample_strides": ((2, 3, 3), (2, 1, 1))}, "downsample_strides"),
        ({"downsample_strides": ((2, 2, 2), (2, 1, 1), (1, 1, 1))}, "downsample_after"),
        ({"downsample_after": (8, 4)}, "downsample_after"),
        ({"downsample_after": (4, 13)}, "downsample_after"),
        ({"downsample_strides": ((2, 2), (2, 1, 1))}, "downsample_strides"),
        ({"downsample_strides": ((2, 2, 2), (0, 1, 1))}, "downsample_strides"),
        ({"image_size": 450}, "image_size"),
        ({"width": 0}, "width"),
        ({"temporal_kernel": 2}, "temporal_kernel"),
        ({"mlp_ratio": -1.0}, "mlp_ratio"),
        ({"temporal_after": (0,)}, "temporal_after"),
    ],
)
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(SpecError, match=field):
        StudentConfig(**overrides)


def test_from_json_rejects_unknown_fields_and_bad_inputs():
    with pytest.raises(SpecError, match="unknown"):
        StudentConfig.from_json({"widht": 768})
    m = tiny_model()
    with pytest.raises(ValueError, match="expected"):
        m(torch.zeros(1, 4, 3, 96, 96))


# ------------------------------------------------------------------------------------------- benchmarks


def test_bench_encoders_and_temporal_smoke_on_tiny_sizes(capsys):
    """The report shapes of ``lfbench bench encoders`` / ``temporal``; real sizes run only in the benchmark."""
    from liteframe_bench.bench.encoders import render_encoders, render_temporal, run_encoders, run_temporal
    from liteframe_bench.presets import build_config

    tiny_teacher = build_config("tiny").vision_config
    tiny_teacher._attn_implementation = "sdpa"
    rep = run_encoders(
        frames=6, warmup=0, repeats=2, progress=False, student_cfg=StudentConfig.tiny(), teacher_cfg=tiny_teacher
    )
    assert rep["student"]["output_grid"] == [2, 4, 4, 32] and rep["student"]["padded_frames"] == 2
    assert rep["teacher"]["output_grid"] == [6, 8, 8, 32]
    assert rep["student"]["flops"] > 0 and rep["teacher"]["flops"] > 0
    assert set(rep["ratios"]) >= {"parameters", "flops", "latency", "latency_paired_median"}
    assert rep["student"]["timing"]["repeats"] == 2 and "device_name" in rep["machine"]
    json.dumps(rep)
    tem = run_temporal(frames=4, grid=(2, 2), width=32, heads=2, warmup=0, repeats=1, progress=False)
    rows = {r["variant"]: r for r in tem["variants"]}
    assert list(rows) == ["spatial", "dw_conv", "full_conv", "temporal_attn", "st_attn"]
    assert rows["dw_conv"]["temporal_params"] == 32 * 3 + 32 + 2 * 32  # depth-wise kernel, bias, LayerNorm
    assert rows["dw_conv"]["temporal_gflops"] * 1e9 == 2 * 4 * 2 * 2 * 32 * 3  # one MAC per tap
    assert rows["st_attn"]["layer_gflops"] > rows["spatial"]["layer_gflops"]
    json.dumps(tem)
    render_encoders(rep)
    render_temporal(tem)
    out = capsys.readouterr().out
    assert "student" in out and "dw_conv" in out
