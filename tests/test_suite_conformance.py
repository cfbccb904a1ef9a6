"""Every suite (each lmms-eval task YAML shipped under ``suites/``) honours what ``lfbench sweep``, ``lfbench eval``
and ``lfbench data check`` expect of it, the way the reducer conformance test runs every reducer: lmms-eval finds
it in lfbench's folder, the functions its YAML names exist, ``lfbench data`` knows where its local copy lives,
and an empty data root gives a report naming what is missing instead of a crash. A new suite is tested the moment
its YAML lands."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import liteframe_bench.suites as suites_pkg
from liteframe_bench import data

SUITES_DIR = Path(suites_pkg.__file__).parent
#: task name -> its YAML, for every task under suites/
TASK_YAMLS = {
    m.group(1): path
    for path in sorted(SUITES_DIR.glob("*/*.yaml"))
    if (m := re.search(r"^task:\s*(\S+)\s*$", path.read_text(), re.M))
}


def suite_of(task: str) -> str:
    """The ``lfbench data`` suite whose local copy the task reads (``synth*`` tasks: the generated suite)."""
    owners = [s for s, lay in data.LAYOUTS.items() if task in lay.tasks]
    if not owners and TASK_YAMLS[task].parent.name == "synth":
        owners = ["synth"]
    assert len(owners) == 1, f"task {task} belongs to {owners or 'no suite'} of lfbench data"
    return owners[0]


def test_every_suite_folder_has_tasks():
    folders = {p.parent.name for p in TASK_YAMLS.values()}
    assert folders == {p.name for p in SUITES_DIR.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert set(data.SUITES) == {suite_of(t) for t in TASK_YAMLS}  # and every data suite has a task


@pytest.fixture(scope="module")
def task_manager():
    from lmms_eval.tasks import TaskManager

    return TaskManager(include_path=str(SUITES_DIR), include_defaults=False)


@pytest.mark.parametrize("task", sorted(TASK_YAMLS))
def test_lmms_eval_finds_the_task_in_lfbenchs_folder(task, task_manager):
    assert task in task_manager.all_tasks


@pytest.mark.parametrize("task", sorted(TASK_YAMLS))
def test_the_functions_its_yaml_names_exist(task):
    path = TASK_YAMLS[task]
    text = path.read_text()
    includes = re.findall(r"^include:\s*(\S+)", text, re.M)
    for inc in includes:  # a task may inherit its functions from another YAML of its folder
        text += (path.parent / inc).read_text()
    named = re.findall(r"!function\s+([\w.]+)\.(\w+)", text)
    assert named, f"{path.name} names no doc_to_visual/doc_to_text/process_results functions"
    for module, func in named:
        if "." in module:  # a dotted path: lfbench's own suite module or lmms-eval's task helpers
            assert callable(getattr(importlib.import_module(module), func, None)), f"{path.name}: {module}.{func}"
            continue
        source = path.parent / f"{module}.py"  # else a file beside the YAML, as lmms-eval resolves it
        assert source.is_file(), f"{path.name}: !function {module}.{func}: no {source.name} beside it"
        tree = ast.parse(source.read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        assert func in defined, f"{path.name}: !function {module}.{func} is not defined in {source.name}"
    assert (path.parent / "README.md").is_file(), f"suite folder {path.parent.name} has no README.md"


@pytest.mark.parametrize("suite", [s for s in data.SUITES if s != "synth"])
def test_an_empty_data_root_is_a_report_naming_the_missing_annotation(suite, tmp_path):
    report = data.check(suite, tmp_path)
    assert not report.annotation_found and report.annotation
    assert all(str(tmp_path) in a for a in report.annotation)
