"""Choosing how many CPU threads the optimiser's torch operations use, by timing real steps.

PyTorch splits each CPU operation over all physical cores by default.  The studio's steps are
many small operations (a 64x64 render is a few thousand pixels), and on small machines waking and
joining the thread team costs more than it saves: measured on a 2-core virtual machine, the
``cube`` scenario at 64x64 takes 8.6 s with 2 threads and 5.0 s with 1, while a 1024x1024 render
is 1.5x faster with 2 (``python bench/raster.py --threads 1``).  The best count depends on the
scene, the resolution and the machine, so the engine measures it: it interleaves the first steps
of a run over the candidate counts, keeps the count with the fastest median step, and says which
in the log.  The steps taken while measuring are ordinary optimisation steps.

A busy machine changes the answer.  Measured on that 2-core machine with other processes running,
a thread team collapses (the 2-thread step of a 20,480-face render became 5-20x slower, single
steps up to 16 s) while one thread slows down only in proportion.  So the tuner (a) prefers fewer
threads unless more are clearly faster (by ``_MARGIN``), and (b) keeps watching: when the median
of the last steps drifts from the median it chose by a factor of ``_DRIFT``, or when
``_RETUNE_SECONDS`` have passed, it measures again.  Re-measuring costs nothing but a few ordinary steps at other counts.

``torch.set_num_threads`` called from the worker thread sets that thread's OpenMP team size (and
torch's process-wide default), which is what the engine's forward and backward passes use.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from typing import Callable

import torch

log = logging.getLogger("studio")

# The machine's default, read before any engine changes it.
DEFAULT_THREADS = torch.get_num_threads()
_WARMUP_STEPS = 2  # the first steps allocate and fill caches: not timed
_ROUNDS = 2  # each candidate is timed in this many interleaved rounds ...
_STEPS_PER_TURN = 2  # ... of this many consecutive steps
_MARGIN = 0.10  # more threads must be this much faster (median step) to be preferred
_WATCH_STEPS = 8  # steps in the moving median that is compared with the chosen median
_DRIFT = 2.0  # a moving median this many times slower (or faster) than chosen: measure again
_RETUNE_SECONDS = 120.0  # and measure again after this long anyway (load that came and went)


def candidates(most: int | None = None) -> tuple[int, ...]:
    """The thread counts worth timing: 1, half of ``most`` and ``most`` (default: torch's default
    for this machine, its physical cores), duplicates removed."""
    most = max(1, DEFAULT_THREADS if most is None else most)
    return tuple(sorted({1, max(1, most // 2), most}))


def choose(medians: dict[int, float], margin: float = _MARGIN) -> int:
    """The thread count to use given each candidate's median step (seconds): the fastest, unless
    fewer threads are within ``margin`` of it (they degrade more gracefully under outside load)."""
    best = min(medians, key=medians.get)
    return min(n for n, t in medians.items() if n <= best and t <= medians[best] * (1 + margin))


class ThreadTuner:
    """Picks the CPU thread count of a loop of steps (the engine's optimisation steps, the
    dataset exporter's images); a no-op with a fixed count or off the CPU.

    Args:
        threads: a fixed count (``int >= 1``) or ``None`` to measure.
        device: the device the steps run on; only CPU steps are tuned.
        clock: seconds, for the periodic re-measurement (``time.monotonic``; tests pass a fake).

    Call :meth:`before_step` just before a step and :meth:`after_step` with its duration in seconds,
    both from the thread that runs the steps.  :attr:`threads` is the count in force (``None`` on
    GPU devices, where CPU threads hardly matter); :attr:`reason` says how it was chosen.
    """

    def __init__(self, threads: int | None, device: torch.device | str, clock: Callable[[], float] = time.monotonic):
        self._cpu = torch.device(device).type == "cpu"
        self._fixed = threads
        self._clock = clock
        self._plan: list[int] = []
        self._times: dict[int, list[float]] = {}
        self._current: int | None = None
        self._chosen_median = 0.0
        self._chosen_at = 0.0
        self._recent: deque[float] = deque(maxlen=_WATCH_STEPS)
        self.threads: int | None = None
        self.reason = ""
        self.measurements = 0  # completed measurements (1 after the first, more after drift)
        self.retune()

    def retune(self) -> None:
        """Measure again from the next step (the workload changed, e.g. a new render option)."""
        if not self._cpu:
            return
        if self._fixed is not None:
            self.threads = self._fixed
            self.reason = "fixed"
            self._plan = []
            return
        options = candidates()
        self.threads = self.threads or DEFAULT_THREADS
        turns = [n for _ in range(_ROUNDS) for n in options for _ in range(_STEPS_PER_TURN)]
        self._plan = [self.threads] * _WARMUP_STEPS + turns if len(options) > 1 else []
        self._times = {n: [] for n in options}
        self._warmup = _WARMUP_STEPS
        self._recent.clear()

    @property
    def measuring(self) -> bool:
        return bool(self._plan)

    def before_step(self) -> None:
        want = self._plan[0] if self._plan else self.threads
        if want is not None and want != self._current:
            torch.set_num_threads(want)
            self._current = want

    def after_step(self, seconds: float) -> None:
        if not self._plan:
            self._watch(seconds)
            return
        n = self._plan.pop(0)
        if self._warmup > 0:
            self._warmup -= 1
        else:
            self._times[n].append(seconds)
        if not self._plan:
            medians = {k: statistics.median(v) for k, v in self._times.items() if v}
            self.threads = choose(medians)
            self._chosen_median = medians[self.threads]
            self._chosen_at = self._clock()
            self.measurements += 1
            self.reason = ", ".join(f"{k} thread{'s' if k > 1 else ''} {v * 1e3:.1f} ms"
                                    for k, v in sorted(medians.items()))
            log.info("CPU threads: %d (median step %s)", self.threads, self.reason)

    def _watch(self, seconds: float) -> None:
        """After a choice: measure again when steps drift or the choice has grown old."""
        if self._fixed is not None or not self._cpu or self.measurements == 0:
            return
        self._recent.append(seconds)
        drifted = False
        if len(self._recent) == _WATCH_STEPS:
            ratio = statistics.median(self._recent) / max(self._chosen_median, 1e-9)
            drifted = ratio > _DRIFT or ratio < 1 / _DRIFT
        if drifted or self._clock() - self._chosen_at > _RETUNE_SECONDS:
            log.info("CPU threads: measuring again (%s)", "step times drifted" if drifted else "periodic check")
            self.retune()
