"""Time-left estimates for long jobs (a ×4 upscale of a large photo runs for minutes on a CPU).

The rate is measured from the first progress report on, not from the start of the job: the
first network evaluation also pays for loading the weights and building the kernels, which
would make every early estimate too long. Until enough has been seen for a stable figure the
estimate is None, so a user is never shown a wild first guess.

Work that turns out not to be needed (a batch's file whose result exists, or that fails before
any compute) is taken off the total, not reported as done: a jump in `done` that took no time
would be measured as speed, and the estimate for the real work left would come out far too short.
A smaller total with `done` where it was keeps the rate measured so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TimeLeft:
    """Seconds left of a job from its (done, total) progress reports.

    `min_seconds` and `min_steps`: how much of the job must have been measured (after the first
    report) before an estimate is given.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, min_seconds: float = 2.0,
                 min_steps: int = 2) -> None:
        self.clock = clock
        self.min_seconds, self.min_steps = min_seconds, min_steps
        self._first: tuple[float, int] | None = None
        self._last: tuple[int, int] = (0, 0)  # (done, total) of the previous report

    def update(self, done: int, total: int) -> float | None:
        """The estimate after this report, or None while there is too little to go on."""
        now = self.clock()
        # A new job through the same object: its counter starts over, or its total is larger. A total
        # that shrank is work taken off this job (see the module docstring): the rate still holds.
        restarted = done < self._last[0] or total > self._last[1]
        self._last = (done, total)
        if self._first is None or restarted:
            self._first = (now, done)
            return None
        t0, d0 = self._first
        steps, secs = done - d0, now - t0
        if done >= total:
            return 0.0
        if steps < self.min_steps or secs < self.min_seconds:
            return None
        return (total - done) * secs / steps


def format_time_left(seconds: float | None) -> str:
    """'about 40 s left', 'about 12 min left', 'about 2 h 5 min left'; '' when unknown.

    Rounded coarsely (5 s, then whole minutes) since the estimate is only that.
    """
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return ""
    if seconds < 55:
        return f"about {max(5, 5 * round(seconds / 5))} s left"
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"about {minutes} min left"
    h, m = divmod(minutes, 60)
    return f"about {h} h {m} min left" if m else f"about {h} h left"
