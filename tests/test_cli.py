import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from liteframe_bench.cli import main

REPO = Path(__file__).parents[1]
LFBENCH = Path(sys.executable).parent / "lfbench"


def run(*args, env=None, cwd=None):
    return subprocess.run([str(LFBENCH), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_ls_json_lists_every_reducer_with_parameters():
    res = run("ls", "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    for name in ("identity", "avgpool", "maxpool", "subsample", "wap", "tome", "prumerge", "fastvid"):
        assert rows[name]["kind"] == "reducer"
        assert rows[name]["reference"]
    assert {p["name"]: p["default"] for p in rows["wap"]["parameters"]}["ratio"] == 16.0


def test_ls_table_and_kind_filter(capsys):
    assert main(["ls", "--kind", "reducer"]) == 0
    out = capsys.readouterr().out
    assert "wap" in out and "lfbench registry" in out
    assert main(["ls", "--kind", "gadget"]) == 2
    assert "kind 'gadget' is not one of" in capsys.readouterr().err


def test_plugins_folder_option(tmp_path):
    (tmp_path / "mine.py").write_text(
        textwrap.dedent('''
        from dataclasses import dataclass
        from liteframe_bench import register_reducer
        from liteframe_bench.methods.reducers.pooling import AvgPool

        @register_reducer("my-avg")
        @dataclass
        class MyAvg(AvgPool):
            """Average pooling under another name (test plugin)."""
            reference = "test"
    ''')
    )
    res = run("--plugins", str(tmp_path), "ls", "--json")
    assert res.returncode == 0, res.stderr
    assert "my-avg" in {r["name"] for r in json.loads(res.stdout)}
    env = dict(os.environ, LFBENCH_PLUGINS=str(tmp_path))
    assert "my-avg" in {r["name"] for r in json.loads(run("ls", "--json", env=env).stdout)}


def test_broken_plugin_and_missing_folder_are_one_clear_line(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    res = run("--plugins", str(tmp_path), "ls")
    assert res.returncode == 2
    assert res.stderr.strip() == f"error: plugin file {tmp_path / 'broken.py'} failed to import: RuntimeError: boom"
    res = run("--plugins", str(tmp_path / "nope"), "ls")
    assert res.returncode == 2 and "plugin folder" in res.stderr and "does not exist" in res.stderr


def test_entry_point_plugin_is_discovered(tmp_path):
    """A third-party distribution registering through the ``lfbench.methods`` entry-point group."""
    (tmp_path / "thirdparty_reducer.py").write_text(
        textwrap.dedent('''
        from dataclasses import dataclass
        from liteframe_bench import register_reducer
        from liteframe_bench.methods.reducers.pooling import MaxPool

        @register_reducer("thirdparty-max")
        @dataclass
        class ThirdPartyMax(MaxPool):
            """Max pooling from an installed third-party package (test)."""
            reference = "test"
    ''')
    )
    dist = tmp_path / "thirdparty_reducer-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-reducer\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lfbench.methods]\nthirdparty = thirdparty_reducer\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    res = run("ls", "--json", env=env)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["thirdparty-max"]["source"] == "thirdparty_reducer.ThirdPartyMax"
    assert "wap" in rows  # built-ins still there: same path


def test_bench_reducers_json_small(tmp_path, capsys):
    out_file = tmp_path / "bench.json"
    rc = main(
        [
            "bench",
            "reducers",
            "--frames",
            "4",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--reducers",
            "wap:ratio=16,avgpool:ratio=16,tome:ratio=16",
            "--json",
            "--out",
            str(out_file),
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(out_file.read_text())
    assert report["layer"]["shape"] == [4, 1025, 1024] and report["layer"]["median_ms"] > 0
    rows = {r["spec"]: r for r in report["reducers"]}
    assert rows["wap:ratio=16"]["shape"] == [4, 32, 32, 1024] and rows["wap:ratio=16"]["tokens_out"] == 4 * 1024 // 16
    assert rows["tome:ratio=16"]["shape"] == [4, 16, 16, 4096]  # at mlp, its default: the pixel-shuffled 4C
    assert rows["tome:ratio=16"]["tokens_out"] == 4 * 256 // 16
    for r in rows.values():
        assert r["ratio_to_layer"] == pytest.approx(r["median_ms"] / report["layer"]["median_ms"])
    assert report["machine"]["versions"]["torch"]


def test_bench_bad_spec_is_a_clear_error(capsys):
    assert main(["bench", "reducers", "--reducers", "wap:ratio=5", "--frames", "4"]) == 2
    assert "ratio=5.0 is invalid" in capsys.readouterr().err


def test_help_explains():
    res = run("--help")
    assert res.returncode == 0 and "ls" in res.stdout and "bench" in res.stdout
    res = run("bench", "reducers", "--help")
    assert "InternViT" in res.stdout and "--json" in res.stdout


def test_data_check_exit_codes(tmp_path, capsys):
    assert main(["data", "check", "videomme", "--root", str(tmp_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and any("test-00000-of-00001.parquet" in p for p in report["problems"])
    assert main(["data", "check", "nosuch"]) == 2
    assert "unknown suite 'nosuch'" in capsys.readouterr().err
    assert main(["data", "make", "videomme"]) == 2


def test_data_make_and_check_synth(tmp_path, capsys):
    assert main(["data", "make", "synth", "--size", "tiny", "--root", str(tmp_path)]) == 0
    assert main(["data", "check", "synth", "--root", str(tmp_path), "--json"]) == 0
    capsys.readouterr()
