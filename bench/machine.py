"""What the benchmark ran on, and what else was using the CPU meanwhile (read from /proc, Linux only)."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_info(kafka_version: str) -> dict[str, object]:
    """Cores, RAM, CPU model, Python and Kafka versions: enough to tell whether two runs compare."""
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(_meminfo_kib("MemTotal") / 1024 / 1024, 1),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "kafka": kafka_version,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def rss_bytes(pid: int) -> int:
    """Resident set size of a process now (VmRSS)."""
    return _status_kib(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    """Highest resident set size the process ever had (VmHWM)."""
    return _status_kib(pid, "VmHWM") * 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_queue_wait_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a CPU (schedstat): other load, not its own."""
    waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            waited += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread ended meanwhile
    return waited / 1e9


@dataclass
class CpuCensus:
    """CPU seconds per process at one moment, to tell afterwards who else was busy during the run."""

    seconds: dict[int, tuple[str, float]]

    @classmethod
    def take(cls) -> CpuCensus:
        found: dict[int, tuple[str, float]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                name = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                found[int(entry.name)] = (name[:120] or entry.name, cpu_seconds(int(entry.name)))
            except (OSError, IndexError, ValueError):
                continue  # the process ended meanwhile
        return cls(found)

    def busiest_since(self, before: CpuCensus, exclude: set[int], top: int = 5,
                      at_least: float = 2.0) -> list[dict[str, object]]:
        """Processes (not ours) that used at least ``at_least`` CPU seconds between the two censuses."""
        used = []
        for pid, (name, now) in self.seconds.items():
            if pid in exclude or pid == os.getpid():
                continue
            spent = now - before.seconds.get(pid, (name, 0.0))[1]
            if spent >= at_least:
                used.append({"pid": pid, "cpu_s": round(spent, 1), "cmd": name})
        return sorted(used, key=lambda p: -float(p["cpu_s"]))[:top]


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (the broker's JVM, the worker …)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(children.get(current, []))
    return found


def _meminfo_kib(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
