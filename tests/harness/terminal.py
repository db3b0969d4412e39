"""Run a command on a pseudo-terminal and answer its prompts, as a person at a terminal does (commands
that ask for confirmation or read passwords behave differently without one)."""
import os
import pty
import re
import select
import subprocess
import time
from dataclasses import dataclass


@dataclass
class TerminalResult:
    returncode: int
    output: str


def run_in_terminal(argv: list[str], answers: list[tuple[str, str]], env: dict, cwd, timeout: float = 600) -> TerminalResult:
    """`answers` are (prompt regex, reply) in the order the prompts appear; each reply is typed once its
    prompt has been printed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(argv, stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=cwd,
                               start_new_session=True)
    os.close(terminal)
    output, answered_up_to, pending = "", 0, list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the command closed the terminal
                    break
                if not chunk:
                    break
                output += chunk.decode(errors="replace")
            if pending and re.search(pending[0][0], output[answered_up_to:]):
                os.write(controller, (pending.pop(0)[1] + "\n").encode())
                answered_up_to = len(output)
            if not ready and process.poll() is not None:
                break
        else:
            process.kill()
            raise AssertionError(f"{argv} did not finish in {timeout} s:\n{output}")
        return TerminalResult(process.wait(timeout=30), output.replace("\r\n", "\n"))
    finally:
        os.close(controller)
