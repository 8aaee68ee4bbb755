"""A py-spy profile of the worker under load: a flame graph (SVG) and the frames that dominate.

Two samplers run side by side, non-blocking (the worker is never paused): one writes the SVG, the
other collapsed stacks, which are summed here by function. *Self* is time in the function itself;
*total* includes what it called. *By package* sums self time per library, which says where tuning
could pay off: in our code, in Faust's stream machinery, in the Kafka client, in Avro or pydantic.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

OUR_PACKAGES = ("streams/", "schemas/")
ROOT_SHARE = 0.6  # a frame on more stacks than this is the loop or the CLI, not a place to tune
RATE_HZ = 97  # not a multiple of the worker's own periodic work (timers every 5 s, commits every 2.8 s)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    """The py-spy executable (the ``bench`` extra installs it), or None."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class Profile:
    samples: int
    svg: str
    top_self: list[tuple[str, float]] = field(default_factory=list)  # (function, share of samples)
    top_total: list[tuple[str, float]] = field(default_factory=list)
    by_package: list[tuple[str, float]] = field(default_factory=list)  # self time per package
    package_total: list[tuple[str, float]] = field(default_factory=list)  # time with the package on the stack
    top_ours: list[tuple[str, float]] = field(default_factory=list)  # our functions, with what they call
    note: str = ""

    def as_json(self) -> dict:
        return {"samples": self.samples, "svg": self.svg, "note": self.note,
                "top_self": [[f, round(s, 4)] for f, s in self.top_self],
                "top_total": [[f, round(s, 4)] for f, s in self.top_total],
                "by_package": [[p, round(s, 4)] for p, s in self.by_package],
                "package_total": [[p, round(s, 4)] for p, s in self.package_total],
                "top_ours": [[f, round(s, 4)] for f, s in self.top_ours]}


class Sampler:
    """py-spy attached to a process for ``seconds``; :meth:`result` waits for it and summarises."""

    def __init__(self, pid: int, seconds: float, out_dir: Path, label: str = "latest") -> None:
        self.exe = py_spy()
        stem = "profile" if label == "latest" else f"{label}-profile"
        self.svg, self.raw = out_dir / f"{stem}.svg", out_dir / f"{stem}.collapsed.txt"
        self._procs: list[subprocess.Popen] = []
        if self.exe is None:
            return
        common = [self.exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(RATE_HZ),
                  "--nonblocking", "--function"]
        for fmt, out in (("flamegraph", self.svg), ("raw", self.raw)):
            self._procs.append(subprocess.Popen([*common, "--format", fmt, "--output", str(out)],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))

    def result(self) -> Profile:
        if self.exe is None:
            return Profile(0, "", note="py-spy not installed (pip install py-spy, or the bench extra)")
        errors = []
        for proc in self._procs:
            _, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                errors.append(err.decode(errors="replace").strip()[-300:])
        if not self.raw.exists():
            return Profile(0, "", note="py-spy failed: " + " | ".join(errors))
        return summarise(self.raw.read_text(encoding="utf-8"), str(self.svg) if self.svg.exists() else "",
                         note=" | ".join(errors))


def summarise(collapsed: str, svg: str, top: int = 15, note: str = "") -> Profile:
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    package_total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_name(f) for f in stack.split(";")]
        samples += count
        self_time[frames[-1][0]] += count
        packages[frames[-1][1]] += count
        for name in {name for name, _ in frames}:
            total_time[name] += count
        for package in {package for _, package in frames}:
            package_total[package] += count

    def shares(counter: Counter[str], keep=lambda name, n: True) -> list[tuple[str, float]]:
        if not samples:
            return []
        return [(name, n / samples) for name, n in counter.most_common() if keep(name, n)][:top]

    def below_the_loop(name: str, n: int) -> bool:
        """Leaves out the frames on nearly every stack: the CLI, the worker's start-up, the event loop."""
        return n / samples < ROOT_SHARE

    def ours(name: str, n: int) -> bool:
        return name.split("(")[-1].startswith(OUR_PACKAGES) and below_the_loop(name, n)

    return Profile(samples, svg, shares(self_time), shares(total_time, below_the_loop), shares(packages),
                   shares(package_total, below_the_loop), shares(total_time, ours), note)


def _name(frame: str) -> tuple[str, str]:
    """``("decide (streams/policy.py)", "streams")`` from a py-spy frame such as ``decide (streams/policy.py)``.

    py-spy shortens paths to the part below ``site-packages`` or the interpreter's library, so the
    first component names the package: ``faust``, ``aiokafka``, ``asyncio``, ``streams`` ….
    """
    found = _FRAME.match(frame.strip())
    if found is None:
        return frame.strip(), "other"
    path = found["file"].removeprefix("<frozen ").removesuffix(">")
    top = path.lstrip("/").split("/", 1)[0].removesuffix(".py") if "/" in path else path.removesuffix(".py")
    return f"{found['func']} ({path})", top
