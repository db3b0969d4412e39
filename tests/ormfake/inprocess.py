"""`orm-pack` run in the test's own process: the CLI's main() with the environment, working directory,
empty stdin and captured output a subprocess would get, and its exit code. A subprocess pays Python's
start and the OCI SDK's imports (about half a second of CPU) for every call; the error paths and
workflow rules are tested this way, the paths a user takes end to end (tests/orm/test_deploy_e2e.py, the
clean installs, README's commands) still as subprocesses.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import traceback
from pathlib import Path

from .testing import CliResult


@contextlib.contextmanager
def _process_like(env: dict, cwd: Path):
    saved_env, saved_cwd, saved_stdin = dict(os.environ), os.getcwd(), sys.stdin
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    with open(os.devnull) as devnull:
        sys.stdin = devnull
        try:
            yield
        finally:
            sys.stdin = saved_stdin
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)


def run(argv: list[str], env: dict, cwd: Path) -> CliResult:
    from orm_pack import cli

    out, err = io.StringIO(), io.StringIO()
    with _process_like(env, cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse's usage errors and --help
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except Exception:  # what the interpreter would print before exiting with 1
            traceback.print_exc(file=err)
            code = 1
    return CliResult(code, out.getvalue(), err.getvalue())
