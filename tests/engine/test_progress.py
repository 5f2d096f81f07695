"""Time-left estimates: measured from the first report, withheld until stable, coarse words."""

from __future__ import annotations

import pytest

from engine.progress import TimeLeft, format_time_left


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_rate_is_measured_from_the_first_report_not_the_slow_start():
    clock = Clock()
    eta = TimeLeft(clock)
    clock.t += 30.0  # loading and the first evaluation: slow
    assert eta.update(1, 101) is None
    for done in range(2, 12):
        clock.t += 0.5
        left = eta.update(done, 101)
    # 10 steps in 5 s since the first report: 0.5 s a step, 90 steps left.
    assert left == pytest.approx(45.0)


def test_no_estimate_until_enough_was_measured():
    clock = Clock()
    eta = TimeLeft(clock, min_seconds=2.0, min_steps=2)
    assert eta.update(0, 10) is None
    clock.t += 5.0
    assert eta.update(1, 10) is None  # one step is not a rate yet
    clock.t += 0.1
    assert eta.update(2, 10) == pytest.approx(8 * 5.1 / 2)


def test_short_fast_jobs_get_no_estimate_and_done_is_zero():
    clock = Clock()
    eta = TimeLeft(clock)
    eta.update(0, 4)
    clock.t += 0.2
    assert eta.update(2, 4) is None  # 0.2 s is too little to go on
    clock.t += 0.2
    assert eta.update(4, 4) == 0.0


def test_a_counter_that_starts_over_starts_a_new_measurement():
    clock = Clock()
    eta = TimeLeft(clock)
    eta.update(0, 10)
    clock.t += 10.0
    assert eta.update(5, 10) == pytest.approx(10.0)
    # A second job through the same object: the old rate (2 s a step) must not carry over.
    assert eta.update(0, 100) is None
    clock.t += 3.0
    assert eta.update(30, 100) == pytest.approx(70 * 3.0 / 30)


@pytest.mark.parametrize("seconds, text", [
    (None, ""), (0.0, ""), (float("inf"), ""), (float("nan"), ""),
    (1.0, "about 5 s left"), (42.0, "about 40 s left"), (54.0, "about 55 s left"),
    (60.0, "about 1 min left"), (89.0, "about 1 min left"), (91.0, "about 2 min left"),
    (3599.0, "about 1 h left"), (7500.0, "about 2 h 5 min left"),
])
def test_time_left_words(seconds, text):
    assert format_time_left(seconds) == text


def test_the_cli_bar_adds_the_time_left_and_blanks_what_a_shorter_line_leaves(capsys):
    from engine.cli import ProgressBar

    clock = Clock()
    bar = ProgressBar("upscale x4", clock=clock, live=True)  # as on a terminal (capsys's stderr is none)
    for done, dt in [(1, 20.0), (2, 3.0), (3, 3.0), (4, 3.0)]:
        clock.t += dt
        bar(done, 404)
    lines = capsys.readouterr().err.split("\r")[1:]
    assert lines[0].startswith("upscale x4 [") and "1/404" in lines[0] and "left" not in lines[0]
    # 3 s a step from the first report on: 400 steps left, 20 minutes.
    assert lines[3].endswith("4/404  29.0s, about 20 min left")
    clock.t += 3.0
    bar(404, 404)  # done: no estimate, and the shorter line covers the longer one before it
    last = capsys.readouterr().err
    assert "left" not in last.rstrip() and last.endswith("\n") and len(last.strip("\r\n")) == len(lines[3])
