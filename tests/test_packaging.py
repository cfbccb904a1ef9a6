"""methods/ and suites/ ship under the liteframe_bench namespace, in an editable install and in a wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]


def test_editable_install_maps_methods_and_suites():
    code = (
        "import liteframe_bench.methods as m, liteframe_bench.suites as s, liteframe_bench.methods.reducers.wap as w;"
        "print(m.__file__); print(s.__file__); print(w.__file__)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    files = [Path(p) for p in res.stdout.split()]
    assert files == [
        REPO / "methods" / "__init__.py",
        REPO / "suites" / "__init__.py",
        REPO / "methods" / "reducers" / "wap.py",
    ]
    res = subprocess.run([sys.executable, "-c", "import methods"], capture_output=True, text=True, cwd="/")
    assert res.returncode != 0, "methods must not install as a top-level import name"


def _package_dirs() -> set[str]:
    found = set()
    for top, ns in (
        ("liteframe_bench", "liteframe_bench"),
        ("methods", "liteframe_bench/methods"),
        ("suites", "liteframe_bench/suites"),
    ):
        for init in (REPO / top).rglob("__init__.py"):
            found.add(str(Path(ns) / init.parent.relative_to(REPO / top)).removesuffix("/."))
    return found


@pytest.mark.slow
def test_wheel_contains_and_imports_methods_and_suites(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("liteframe_bench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for pkg in _package_dirs():
        assert f"{pkg}/__init__.py" in names, f"{pkg} is missing from the wheel: list it in pyproject.toml"
    assert not any(n.startswith(("methods/", "suites/", "reports/", "tests/")) for n in names)
    # a module beside the package that replaced it (cli.py and cli/): a stale build/lib, shipped by mistake
    shadowed = [n for n in names if n.endswith(".py") and n[:-3] + "/__init__.py" in names]
    assert not shadowed, f"{shadowed}: stale modules from build/ (remove build/ and rebuild)"
    assert "liteframe_bench/reports/paper.yaml" in names and "liteframe_bench/suites/synth/synth_tiny.yaml" in names
    ep = next(n for n in names if n.endswith("entry_points.txt"))
    assert "builtin = liteframe_bench.methods" in zipfile.ZipFile(wheel).read(ep).decode()
    # Install the wheel alone into a folder that shadows the editable install, and import from it.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import liteframe_bench as l, liteframe_bench.methods as m, liteframe_bench.suites as s;"
        "print(m.__file__); print(s.__file__); print(sorted(e.name for e in l.entries('reducer')))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd="/",
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    lines = res.stdout.splitlines()
    assert lines[0] == str(target / "liteframe_bench" / "methods" / "__init__.py")
    assert lines[1] == str(target / "liteframe_bench" / "suites" / "__init__.py")
    assert "wap" in lines[2] and "tome" in lines[2]
