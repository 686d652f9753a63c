"""Timing shared by the benchmarks: one forward + backward step, synchronised on CUDA."""

from __future__ import annotations

import time
from typing import Callable

import torch


def forward_backward_ms(forward: Callable[[], torch.Tensor], device: torch.device | str,
                        clock: Callable[[], float] = time.perf_counter) -> tuple[float, float]:
    """Run ``forward()`` (which returns a scalar loss) and its backward pass.

    Returns (forward ms, backward ms).  On CUDA the device is synchronised before each reading so
    asynchronous kernels are counted where they run.  ``clock`` may be ``time.process_time`` to
    count this process's CPU time only (useful on a busy machine with one thread).
    """
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    t0 = clock()
    loss = forward()
    sync()
    t1 = clock()
    loss.backward()
    sync()
    t2 = clock()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3
