"""How busy other processes kept the CPUs while a benchmark ran: on a 2-core
machine anything running beside a benchmark changes its figures, and this says
when that happened. Shared by the benchmarks (run as scripts from bench/)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil


class CpuWatch:
    """CPUs kept busy by processes outside the bench's own tree (itself and its
    children, finished or running) while a section ran; steal time counts as
    busy. Linux only: None elsewhere."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
            hz = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, AttributeError):
            return None
        busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait; steal counts
        own = os.times()
        ours = own.user + own.system + own.children_user + own.children_system
        for p in psutil.Process().children(recursive=True):
            try:
                t = p.cpu_times()
                ours += t.user + t.system
            except psutil.Error:
                pass
        return busy / hz, ours, time.perf_counter()

    def others(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None or end[2] <= self.start[2]:
            return None
        busy, own, wall = (e - s for e, s in zip(end, self.start))
        return round(max(0.0, (busy - own) / wall), 3)
