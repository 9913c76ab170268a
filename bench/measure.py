"""Measuring a command: its wall time and the peak memory of it and its children; and
the baseline every ratio is taken to, bare lxml parse + XSD validation of the same file."""

from __future__ import annotations

import contextlib
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.inbound import pain001_v03

# Seldom enough that the sampler does not slow what it measures on 2 cores.
sample_interval_seconds = 0.05


@dataclass(frozen=True, slots=True)
class Measured:
    seconds: float
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0  # user + system of the command and the children it waited for


def kib(pid: int, field: str) -> int:
    """A field of /proc/PID/status in KiB; 0 once the process has gone."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [int(c) for c in text.split()]


def run_measured(command: list[str]) -> Measured:
    """Run `command`: its wall time, and the peak memory of it and the children it forks.

    The time runs from just before the start to the moment `wait` returns, which is when
    the process has exited. Meanwhile a thread reads the high-water mark (VmHWM) of the
    process and of each child; the peak is the sum of those marks, so a peak between two
    samples is not missed, and peaks of two processes at different moments are added (the
    figure errs high, as do pages a forked child shares with its parent).
    (`getrusage(RUSAGE_CHILDREN)` would count the memory this process held when it forked.)
    """
    marks: dict[int, int] = {}
    done = threading.Event()

    def sample(pid: int) -> None:
        while not done.is_set():
            for each in (pid, *children(pid)):
                marks[each] = max(marks.get(each, 0), kib(each, "VmHWM"))
            done.wait(sample_interval_seconds)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = threading.Thread(target=sample, args=(proc.pid,), daemon=True)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Measured(elapsed, sum(marks.values()) / 1024, proc.returncode, out, err, cpu)


class Baseline:
    """Bare lxml parse + validation against the official schema, as a user would do it:
    in a process of its own each time, as every scan runs. (Timed in the bench's own
    process, the parse reused whatever memory the bench had freed before, so the same
    file's time depended on what the bench had done earlier in the run.)"""

    def seconds(self, path: Path) -> float:
        return self.measured(path)[0]

    def measured(self, path: Path) -> tuple[float, float]:
        """The wall and the CPU time of parsing and validating `path` (the schema loaded
        beforehand, as the gateway loads it once per process)."""
        done = subprocess.run(
            [sys.executable, "-c", _BARE_PARSE, str(pain001_v03.schema_path()), str(path)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"{path}: bare parse failed\n{done.stdout}\n{done.stderr}")
        elapsed, cpu = map(float, done.stdout.split())
        return elapsed, cpu


_BARE_PARSE = """
import sys, time
from lxml import etree
schema = etree.XMLSchema(etree.parse(sys.argv[1]))
started, cpu = time.perf_counter(), time.process_time()
tree = etree.parse(sys.argv[2])
valid = schema.validate(tree)
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
if not valid:
    sys.exit(f"{sys.argv[2]} is not valid: {schema.error_log}")
print(elapsed, cpu)
"""


def median_of(values: list[float], unit: str = " s", digits: int = 2) -> str:
    """`1.78 s (1.75, 1.78, 1.80)`: the median, then every value in the order measured."""
    each = ", ".join(f"{v:.{digits}f}" for v in values)
    return f"{statistics.median(values):.{digits}f}{unit} ({each})"
