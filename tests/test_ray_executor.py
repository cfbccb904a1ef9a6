"""``lfbench sweep --executor ray`` on a real Ray cluster this module starts on this machine (one node, two CPU
workers): the same cells and rows as a local sweep; a worker killed mid-cell costs only a retry of its cell (or,
out of retries, a row that says why); a driver killed with SIGKILL and rerun loses and duplicates nothing.

The cluster is ``ray start --head --block`` in a session of its own, so a worker is found by its process title
(``ray::CellWorker.run_cell``) inside that session only, and the teardown ends that session and nothing else."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from liteframe_bench.cli import main
from liteframe_bench.results import ResultsDir

BIN = Path(sys.executable).parent
ARGS = [
    "--model", "tiny",
    "--methods", "baseline,wap:ratio=16,avgpool:ratio=4",
    "--frames", "4,8",
    "--suites", "lfb_adapter_probe",
    "--timing-samples", "1",
    "--warmup", "0",
    "--repeats", "1",
    "--new-tokens", "2",
]  # fmt: skip
N_CELLS = 6
KEY = ["cell_id", "method", "frames", "suite"]


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def env(probe_task):
    tasks, _ = probe_task
    # LFBENCH_TASKS is set for the driver only: the workers get it through the executor's forwarding.
    return dict(os.environ, LFBENCH_TASKS=str(tasks), OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, env):
    """The local sweep to compare with, started in the background (it runs while the cluster starts)."""
    out = tmp_path_factory.mktemp("local") / "sweep"
    proc = lfbench(out, env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    yield out, proc
    proc.kill()


@pytest.fixture(scope="module")
def local(local_sweep, cluster):
    out, proc = local_sweep
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return out


@pytest.fixture(scope="module")
def cluster(local_sweep, probe_task):
    """A head node with two CPUs (two workers), ports picked free, torn down with everything in its session."""
    gcs, client, nm, om, agent, agent_grpc, metrics, rt_env = _free_ports(8)
    temp = tempfile.mkdtemp(prefix="lfr", dir="/tmp")  # short: Ray's socket paths live under it
    cluster_env = {k: v for k, v in os.environ.items() if not k.startswith("LFBENCH_")} | {"OMP_NUM_THREADS": "1"}
    log = open(Path(temp) / "ray_start.log", "w")  # noqa: SIM115 (closed at teardown)
    head = subprocess.Popen(
        [
            str(BIN / "ray"), "start", "--head", "--block", "--num-cpus", "2", "--num-gpus", "0",
            "--node-ip-address", "127.0.0.1", "--port", str(gcs), "--ray-client-server-port", str(client),
            "--node-manager-port", str(nm), "--object-manager-port", str(om),
            "--dashboard-agent-listen-port", str(agent), "--dashboard-agent-grpc-port", str(agent_grpc),
            "--metrics-export-port", str(metrics), "--runtime-env-agent-port", str(rt_env),
            "--include-dashboard", "false", "--disable-usage-stats", "--object-store-memory", str(100 * 2**20),
            "--temp-dir", temp,
        ],
        env=cluster_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    address = f"127.0.0.1:{gcs}"
    deadline = time.time() + 120
    while "Ray runtime started" not in (Path(temp) / "ray_start.log").read_text():
        assert head.poll() is None and time.time() < deadline, (Path(temp) / "ray_start.log").read_text()[-3000:]
        time.sleep(0.2)
    yield {"address": address, "sid": head.pid}
    try:
        head.terminate()  # `ray start --block` stops the processes it started on SIGTERM (to it alone)
        head.wait(timeout=60)
    finally:
        for pid in session_pids(head.pid):  # anything of the cluster's session still there
            os.kill(pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def session_pids(sid, title=b""):
    """Processes of the session ``sid`` (the test cluster's: Ray gives workers their own process group, not their
    own session) whose command line (a Ray worker's is its process title) starts with ``title``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == sid and (entry / "cmdline").read_bytes().startswith(title):
                out.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out


def lfbench(out, env, *extra, **popen):
    cmd = [str(BIN / "lfbench"), "sweep", *ARGS, "--out", str(out), "--json", *extra]
    if popen:
        return subprocess.Popen(cmd, env=env, **popen)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def on_ray(out, env, cluster, *extra, **popen):
    return lfbench(out, env, "--executor", "ray", "--address", cluster["address"], *extra, **popen)


def rows(directory):
    """The deterministic part of a results folder: cells and samples, sorted (latency columns left out)."""
    cells, samples = ResultsDir(directory).load()
    c = cells[KEY + ["spec", "reducer", "model", "status", "reason", "accuracy", "n_samples", "n_errors",
                     "visual_tokens", "prompt_tokens", "timing_samples", "flops_total"]]
    s = samples[KEY + ["doc_id", "video", "prediction", "answer", "correct", "error", "visual_tokens"]]
    return c.sort_values(KEY).reset_index(drop=True), s.sort_values(KEY + ["doc_id"]).reset_index(drop=True)


def assert_same_rows(a, b):
    for x, y in zip(rows(a), rows(b), strict=True):
        pd.testing.assert_frame_equal(x, y)


def killed_mid_cell(victim):
    """Whether the worker ``victim`` died inside a cell: its scratch folder for the cell is still there (removed)."""
    left = list(Path(tempfile.gettempdir()).glob(f"lfbench-ray-{victim}-*"))
    for d in left:
        shutil.rmtree(d)
    return bool(left)


def running_cell_pid(cluster, driver, deadline):
    """The pid of a worker of the test cluster that is inside a cell (its process title says so)."""
    while time.time() < deadline and driver.poll() is None:
        pids = session_pids(cluster["sid"], b"ray::CellWorker.run_cell")
        if pids:
            return pids[0]
        time.sleep(0.02)
    raise AssertionError(f"no worker of the test cluster was seen running a cell; driver exit code {driver.poll()}, "
                         f"stderr: {driver.communicate()[1][-3000:] if driver.poll() is not None else ''}")


def test_same_cells_and_rows_as_a_local_sweep(local, env, cluster, tmp_path):
    res = on_ray(tmp_path / "ray", env, cluster)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)
    assert summary["executor"] == "ray" and summary["ran"] == N_CELLS and summary["retried"] == 0
    assert_same_rows(local, tmp_path / "ray")  # same cell ids, statuses, predictions, errors, tokens, FLOPs
    cells, _ = ResultsDir(tmp_path / "ray").load()
    assert (cells["lat_e2e_s"] > 0).all() and set(cells["status"]) == {"ok"}
    (run,) = ResultsDir(tmp_path / "ray").runs()
    assert run["executor"]["kind"] == "ray" and run["executor"]["cluster"] == {"CPU": 2.0}
    assert run["executor"]["resources_per_cell"] == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert [w["where"] for w in run["executor"]["workers"]] == summary["workers"]
    assert run["model"]["attn_implementation"] == "sdpa" and run["machine"]["versions"]["torch"]
    # the folder is an ordinary results folder: the other commands read it
    assert main(["results", "show", str(tmp_path / "ray"), "--json"]) == 0
    assert main(["results", "merge", str(tmp_path / "ray"), str(local), "--out", str(tmp_path / "m")]) == 0
    assert len(ResultsDir(tmp_path / "m").load()[0]) == N_CELLS


def test_a_worker_killed_mid_cell_costs_one_retry(local, env, cluster, tmp_path):
    out = tmp_path / "killed_worker"
    proc = on_ray(out, env, cluster, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = running_cell_pid(cluster, proc, time.time() + 180)
        done_before_kill = len(list((out / "cells").glob("*.parquet")))
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert done_before_kill < N_CELLS and killed_mid_cell(victim)
    summary = json.loads(stdout)
    assert summary["retried"] == 1 and summary["ran"] == N_CELLS and not summary["errors"], summary
    assert f":{victim}" in stderr and "handing it out again (retry 1/2)" in stderr
    assert any(w.endswith(f":{victim}") for w in summary["workers"])  # the killed worker had been handed cells
    assert_same_rows(local, out)  # every cell, once, with the rows a local sweep gives


def test_out_of_retries_the_cell_is_recorded_with_the_reason(env, cluster, tmp_path):
    out = tmp_path / "no_retry"
    one = ["--methods", "wap:ratio=16", "--frames", "8", "--retries", "0"]  # one cell, one worker
    proc = on_ray(out, env, cluster, *one, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = running_cell_pid(cluster, proc, time.time() + 180)
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert killed_mid_cell(victim)
    summary = json.loads(stdout)
    assert summary["ran"] == 1 and summary["retried"] == 0 and len(summary["errors"]) == 1, summary
    assert summary["errors"][0]["reason"].startswith("WorkerLost: the Ray worker running this cell died on each of 1")
    (cell,) = ResultsDir(out).load()[0].to_dict("records")
    assert (cell["status"], cell["method"], cell["frames"], cell["reducer"], cell["n_samples"]) == (
        "error", "wap", 8, "wap", 0)
    assert cell["model"].startswith("tiny") and "recorded as an error after 1 tries" in stderr
    assert ResultsDir(out).is_done(cell["cell_id"])  # recorded means done: a rerun does not hand it out again


def test_driver_killed_then_rerun_loses_and_duplicates_nothing(local, env, cluster, tmp_path):
    out = tmp_path / "killed_driver"
    proc = on_ray(out, env, cluster, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not list((out / "cells").glob("*.parquet")) and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "the sweep finished before its driver could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    done = len(list((out / "cells").glob("*.parquet")))
    assert 1 <= done < N_CELLS
    res = on_ray(out, env, cluster)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)
    assert summary["skipped_done"] == done and summary["ran"] == N_CELLS - done
    assert_same_rows(local, out)
    _, samples = ResultsDir(out).load()
    assert not samples.duplicated(["cell_id", "doc_id"]).any() and len(samples) == N_CELLS * 5
    assert len(ResultsDir(out).runs()) == 2


def test_a_users_error_on_a_worker_reads_as_it_does_locally(env, cluster, tmp_path):
    res = on_ray(tmp_path / "bad", env, cluster, "--methods", "baseline", "--frames", "4", "--suites", "nosuch")
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith("error: unknown suite(s) ['nosuch']")
    assert "Traceback" not in res.stderr and not (tmp_path / "bad").exists()


def test_errors_name_the_flag_and_the_extra(env, tmp_path, capsys, monkeypatch):
    base = ["sweep", "--model", "tiny", "--frames", "4", "--out", str(tmp_path / "x")]
    assert main([*base, "--executor", "slurm"]) == 2
    err = capsys.readouterr().err
    assert "Invalid value for '--executor'" in err and "'slurm' is not one of 'local', 'ray'" in err
    assert main([*base, "--address", "auto", "--gpus-per-cell", "1"]) == 2
    assert "--address, --gpus-per-cell: only used with --executor ray" in capsys.readouterr().err
    assert main([*base, "--executor", "ray", "--gpus-per-cell", "1"]) == 2
    assert "--gpus-per-cell 1 with --device cpu" in capsys.readouterr().err
    assert main([*base, "--executor", "ray", "--device", "cuda", "--gpus-per-cell", "0"]) == 2
    assert "--gpus-per-cell 0 with --device cuda" in capsys.readouterr().err
    assert main([*base, "--executor", "ray", "--device", "cuda:1"]) == 2
    assert "allowed: --device cuda" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed: `import ray` fails
    assert main([*base, "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "--executor ray needs Ray" in err and "pip install 'liteframe-bench[ray]'" in err
    assert not (tmp_path / "x").exists()
