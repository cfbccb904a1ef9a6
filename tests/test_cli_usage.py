"""Usage errors (unknown command or option, missing argument) end in click's short message and exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

LFBENCH = Path(sys.executable).parent / "lfbench"


@pytest.mark.parametrize(
    "args,usage,message",
    [
        (["nosuchcmd"], "Usage: lfbench [OPTIONS] COMMAND", "No such command 'nosuchcmd'"),
        (["sweep", "--nosuch", "x"], "Usage: lfbench sweep [OPTIONS]", "No such option: --nosuch"),
        (["sweep", "--executor", "x"], "Usage: lfbench sweep [OPTIONS]", "'x' is not one of 'local', 'ray'"),
        (["data", "check"], "Usage: lfbench data check [OPTIONS]", "Missing argument"),
    ],
)
def test_usage_error_is_one_message_not_a_traceback(args, usage, message, tmp_path):
    res = subprocess.run([str(LFBENCH), *args], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    assert usage in res.stderr and message in res.stderr
    assert "--help' for help." in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 5


def test_usage_error_in_process(capsys):
    from liteframe_bench.cli import main

    assert main(["sweep", "--nosuch-option"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --nosuch-option" in err and "Usage: lfbench sweep" in err
