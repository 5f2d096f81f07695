"""Batches as a user runs them: the time left, Overwrite, a folder that cannot be written, and what the
end, a cancel and a failure say (the batch audit's findings 2-6)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.model import BatchDone, BatchRequest, GenerationParams, Progress, Task
from engine.progress import TimeLeft

from .conftest import make_photo
from .fakes import make_controller
from .test_batch import _upscaling, cancel_at_stage
from .ui.conftest import dialog_log, photo_file, window  # noqa: F401 - fixtures of the window test below


def _photos(folder: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, (w, h)) in enumerate(sizes.items()):
        Image.fromarray(make_photo(h, w, seed=i)).save(folder / name)
    return folder


def _read_only(monkeypatch: pytest.MonkeyPatch, *folders: Path) -> None:
    """`folders` cannot be written (chmod shows nothing when the tests run as root: os.access is faked)."""
    real = os.access
    gone = {Path(f).resolve() for f in folders}
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p).resolve() in gone
                        else real(p, mode, **kw))


# -- D2: the time left ------------------------------------------------------------------------------


def test_a_batch_shares_its_progress_by_each_files_work(tmp_path: Path) -> None:
    # A x2 upscale of 64x64 is many more tiles than one of 16x16: it got the same half of the bar,
    # which then crawled through the large file's half (and the time left with it).
    folder = _photos(tmp_path / "in", {"a_small.png": (16, 16), "b_large.png": (64, 64)})
    c, view, engine, progress = _upscaling(tmp_path)
    c.run_batch([folder])
    engine.process()
    assert "2 written" in view.set_status.call_args.args[0]
    at_second = next(p for p in progress if p.stage.startswith("2/2"))
    assert at_second.total > 0 and at_second.done / at_second.total < 0.2  # the small file's share
    assert progress[-1].done == progress[-1].total  # the bar ends full
    dones = [p.done for p in progress if p.total]
    assert dones == sorted(dones)  # never backwards


def test_skipped_and_instantly_failed_files_are_not_measured_as_speed(tmp_path: Path) -> None:
    folder = _photos(tmp_path / "in", {"a.png": (16, 16), "b.png": (16, 16), "d.png": (16, 16)})
    (folder / "c.png").write_bytes(b"not an image")  # fails before any compute
    c, view, engine, progress = _upscaling(tmp_path)
    c.run_batch([folder / "a.png", folder / "b.png"])
    engine.process()  # a stopped batch's first two results
    progress.clear()
    c.run_batch([folder])
    engine.process()
    assert "1 written, 2 skipped (output exists), 1 failed" in view.set_status.call_args.args[0]
    # Until the engine's first step nothing was measured (total 0: no time left is worked out; the
    # first step also pays for warming up). The skipped and failed files were taken off the total,
    # not reported as done in no time: the last file starts at 0 of the whole bar.
    before = [p for p in progress if p.stage in ("1/4 a.png", "2/4 b.png", "3/4 c.png")]
    assert before and all(p.total == 0 for p in before)
    last = [p for p in progress if p.stage == "4/4 d.png"]
    assert min(p.done for p in last) == 0 and max(p.done for p in last) == last[-1].total


def test_a_result_refused_for_its_size_takes_no_share_of_the_bar(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # A 50 Mpx photo's x2 (refused before any compute) had nearly all of the bar by its tiles: the
    # first small file's progress read "about 302 h left".
    import engine.imageio as imageio
    from app.batch import file_work

    monkeypatch.setattr(imageio, "MAX_PIXELS", 600)  # a 16x16 photo's x2 (1024 px) is over it, 8x8's is not
    folder = _photos(tmp_path / "in", {"big.png": (16, 16), "ok.png": (8, 8)})
    params = GenerationParams(task=Task.upscale, upscale_factor=2)
    assert file_work(params, folder / "big.png", folder / "big_upscale_2x.png", 16) == 0
    assert file_work(params, folder / "ok.png", folder / "ok_upscale_2x.png", 16) > 0
    assert file_work(params, folder / "nothing.png", folder / "x.png", 16) is None


def test_work_taken_off_the_total_keeps_the_measured_rate() -> None:
    t = [100.0]
    eta = TimeLeft(lambda: t[0])
    eta.update(0, 100)
    t[0] += 10.0
    assert eta.update(10, 100) == pytest.approx(90.0)  # 1 s a unit
    # A skipped file's share leaves the total: the rate stays measured, nothing jumps or restarts.
    assert eta.update(10, 60) == pytest.approx(50.0)
    t[0] += 2.0
    assert eta.update(12, 60) == pytest.approx(48.0)


# -- D3: Overwrite, and an existing output that is not a picture --------------------------------------


def test_overwrite_is_a_remembered_setting_that_redoes_existing_results(tmp_path: Path) -> None:
    folder = _photos(tmp_path / "in", {"a.png": (16, 16)})
    old = folder / "a_upscale_2x.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(old)  # yesterday's result, another seed
    c, view, engine, _ = _upscaling(tmp_path)
    assert c.batch_overwrite is False  # the default: a dropped batch resumes
    c.set_batch_overwrite(True)
    assert "replace existing results" in view.set_status.call_args.args[0]
    c.run_batch([folder])
    assert engine.queue[0].skip_existing is False
    engine.process()
    assert "1 written, 0 skipped" in view.set_status.call_args.args[0]
    assert np.asarray(Image.open(old)).any() and not list(folder.glob(".*"))  # replaced whole
    c2, _, _ = make_controller(tmp_path, load_model=False)  # a restart: the same settings file
    assert c2.batch_overwrite is True


def test_an_existing_output_that_is_not_a_picture_is_reported_not_taken_as_done(tmp_path: Path) -> None:
    folder = _photos(tmp_path / "in", {"a.png": (16, 16), "b.png": (16, 16)})
    text = folder / "a_upscale_2x.png"
    text.write_bytes(b"old result from yesterday")
    truncated = folder / "b_upscale_2x.png"
    Image.fromarray(make_photo(32, 32)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    c, view, engine, _ = _upscaling(tmp_path)
    c.run_batch([folder])
    engine.process()
    assert "0 written, 2 skipped (output exists)" in view.set_status.call_args.args[0]
    # Left as they are (skip-existing never replaces a file unasked), but said, with what to do.
    assert text.read_bytes() == b"old result from yesterday"
    title, message = view.show_error.call_args.args
    lines = message.splitlines()
    assert lines[0].startswith("a_upscale_2x.png: exists but does not open as an image") and len(lines) == 2
    assert "Overwrite Existing Results" in lines[0] and lines[1].startswith("b_upscale_2x.png:")


# -- D4: a folder that cannot be written ----------------------------------------------------------


def test_a_read_only_results_folder_is_refused_when_picked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ro = tmp_path / "RO_OUT"
    ro.mkdir()
    _read_only(monkeypatch, ro)
    c, view, _, _ = _upscaling(tmp_path)
    assert c.set_batch_out_dir(ro) is False and c.settings.batch_out_dir == ""
    status = view.set_status.call_args.args[0]
    assert status.startswith(f"Cannot write to {ro}: pick another folder") and "next to each input" in status
    # A folder not made yet is judged by the one it would be made in.
    assert c.set_batch_out_dir(ro / "new") is False
    assert c.set_batch_out_dir(tmp_path / "new" / "deeper") is True


@pytest.mark.parametrize("beside", [False, True], ids=["results folder", "next to inputs"])
def test_a_batch_into_a_read_only_folder_fails_up_front_with_one_message(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, beside: bool) -> None:
    folder = _photos(tmp_path / "card", {f"photo{i}.png": (16, 16) for i in range(4)})
    out = tmp_path / "RO_OUT"
    out.mkdir()
    c, view, engine, _ = _upscaling(tmp_path)
    if not beside:
        c.set_batch_out_dir(out)
    _read_only(monkeypatch, folder if beside else out)  # a camera card; a folder made read-only since
    assert c.run_batch([folder]) is None and not engine.queue and not c.busy
    status = view.set_status.call_args.args[0]
    assert f"{folder if beside else out} is not writable" in status, status
    assert "File > Batch Results to a Folder" in status and status.count("not writable") == 1
    view.show_error.assert_not_called()


def test_the_same_reason_for_many_files_is_one_line() -> None:
    from app._documents import _failure_lines

    reason = "/ro: output folder is not writable; nothing was changed"
    failed = tuple((Path(f"/in/photo{i}.png"), reason) for i in range(5)) + ((Path("/in/x.jpg"), "damaged"),)
    assert _failure_lines(failed) == [f"photo0.png, photo1.png, photo2.png and 2 more: {reason}", "x.jpg: damaged"]


# -- D5: where the results are, a cancel, the current file ------------------------------------------


def test_the_end_message_says_where_the_results_are(tmp_path: Path) -> None:
    folder = _photos(tmp_path / "in", {"a.png": (16, 16), "b.png": (16, 16)})
    c, view, engine, _ = _upscaling(tmp_path)
    c.run_batch([folder])
    engine.process()
    assert view.set_status.call_args.args[0] == ("Batch done: 2 written, 0 skipped (output exists), 0 failed. "
                                                "Results are next to each input.")
    out = tmp_path / "OUT"
    c.set_batch_out_dir(out)
    c.set_batch_format("jpg")
    c.run_batch([folder])
    engine.process()
    assert view.set_status.call_args.args[0] == ("Batch done: 2 written, 0 skipped (output exists), 0 failed. "
                                                f"Results are in {out}.")


def test_a_cancel_says_what_was_left_and_how_to_resume(tmp_path: Path) -> None:
    folder = _photos(tmp_path / "in", {f"p{i}.png": (16, 16) for i in range(5)})
    Image.fromarray(make_photo(32, 32)).save(folder / "p0_upscale_2x.png")  # an earlier run's
    c, view, engine, _ = _upscaling(tmp_path)
    c.run_batch([folder])
    cancel_at_stage(c, "3/5")
    engine.process()
    assert view.set_status.call_args.args[0] == ("Batch cancelled: 1 written, 1 skipped, 3 not processed; drop the "
                                                "files again to resume. Results are next to each input.")


def test_the_bar_keeps_naming_the_current_file_with_the_time_left(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from app.controller import PROGRESS_CHARS, EditorController

    t = [0.0]

    def clock() -> float:
        t[0] += 1.0  # every report a second later: a time left is known from the third on
        return t[0]

    monkeypatch.setattr(EditorController, "_new_time_left", staticmethod(lambda: TimeLeft(clock)))
    long_name = "z_IMG_20240612_183045_HDR_panorama_from_the_hill.png"
    folder = _photos(tmp_path / "in", {"a.png": (64, 64), long_name: (64, 64)})
    c, view, engine, _ = _upscaling(tmp_path)
    c.run_batch([folder])
    engine.process()
    texts = [call.args[2] for call in view.set_progress.call_args_list]
    timed = [s for s in texts if "left" in s]
    assert any(s.startswith("Upscale: 1/2 a.png \u00b7 about ") for s in timed), texts
    # A name too long to fit whole beside the task's name is cut, and the task's name (in the status
    # bar too) goes first.
    second = [s for s in timed if s.startswith("2/2 ")]
    assert second and all("z_IMG_2024" in s and "\u2026 \u00b7 about" in s for s in second), second
    assert max(map(len, texts)) <= PROGRESS_CHARS


# -- D6: a failure names its input once ---------------------------------------------------------------


def test_a_refusal_over_the_pixel_limit_names_the_input_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.imageio as imageio

    monkeypatch.setattr(imageio, "MAX_PIXELS", 600)  # a 16x16 photo's x2 result (1024 px) is over it
    folder = _photos(tmp_path / "in", {"big.png": (16, 16)})
    c, view, engine, _ = _upscaling(tmp_path)
    c.run_batch([folder])
    engine.process()
    _, message = view.show_error.call_args.args
    assert message.startswith("big.png: the result would be 32x32"), message
    assert str(tmp_path) not in message and "big_upscale_2x" not in message


def test_batch_done_defaults_keep_old_messages_working() -> None:
    done = BatchDone(1, (Path("a"),), (), (), cancelled=True, total=3)
    assert done.not_processed == 2 and done.summary() == "1 written, 0 skipped, 2 not processed"
    req = BatchRequest(1, GenerationParams(task=Task.upscale), (Path("x"),))
    assert req.skip_existing is True


# -- the window: the menu item, and what a batch's end and cancel look like ---------------------------


def test_the_file_menu_offers_overwrite_and_the_bar_fits_a_batch(window, tmp_path: Path, qtbot) -> None:
    from app.gui import build
    from app.ui.main_window import PROGRESS_LONGEST

    act = window.act_batch_overwrite
    assert act in window.menuBar().actions()[0].menu().actions() and act.isCheckable() and not act.isChecked()
    act.trigger()
    assert window.controller.settings.batch_overwrite is True
    assert "replace existing results" in window.status_text.text()
    w2 = build(settings_file=tmp_path / "settings.json", models_dir=tmp_path / "models")
    qtbot.addWidget(w2)
    try:
        assert w2.act_batch_overwrite.isChecked()  # remembered
    finally:
        w2.close()
        w2.engine.shutdown()
    # A file name cut as the controller cuts it fits the bar, however long the count and the time left.
    from app.controller import _batch_progress_text
    from app.ui.main_window import PROGRESS_IMPORTS_LONGEST

    metrics = window.progress.fontMetrics()
    room = max(metrics.horizontalAdvance(t) for t in (PROGRESS_LONGEST, PROGRESS_IMPORTS_LONGEST))
    assert window.progress.width() >= room + 24  # its frame and margins beside the text
    for label, count, left in [("Upscale", "3/7", "about 2 min left"), ("Colorize", "12/345", "about 12 h 55 min left"),
                               ("Colorize", "128/1024", "about 55 s left"), ("Upscale", "1/2", "")]:
        for name in ("IMG_20240612_183045_HDR_panorama.jpg", "DSC_0042_Wedding_Album_Final.JPG", "a.png"):
            text = _batch_progress_text(label, count, name, left)
            assert metrics.horizontalAdvance(text) <= room + 8 and name[:6] in text, text


def test_a_cancel_lands_while_the_inputs_headers_are_read_and_skipped_results_need_none(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    from app import batch
    from engine import Cancelled

    folder = _photos(tmp_path / "in", {f"p{i:03}.png": (8, 8) for i in range(100)})
    for i in range(50):  # half done by an earlier run
        Image.fromarray(make_photo(16, 16)).save(folder / f"p{i:03}_upscale_2x.png")
    read = []
    real = batch.file_work
    monkeypatch.setattr(batch, "file_work", lambda params, src, dst, res: read.append(src.name) or real(params, src, dst, res))
    request = BatchRequest(1, GenerationParams(task=Task.upscale, upscale_factor=2, steps=1), (folder,))

    def esc(done: int, total: int, stage: str) -> None:
        raise Cancelled()

    result = batch.run_batch(object(), request, esc)
    assert result.cancelled and read == []  # Esc waited for every header before
    reports = []

    def count(done: int, total: int, stage: str) -> None:
        reports.append(stage)
        if not stage.startswith("reading"):
            raise Cancelled()

    batch.run_batch(object(), request, count)
    assert sorted(read) == [f"p{i:03}.png" for i in range(50, 100)]  # none for the results that exist
    assert reports.count("reading 100 files") == 100 // batch.HEADER_REPORT + 1


def test_an_existing_result_is_checked_by_its_header_and_its_end(tmp_path: Path) -> None:
    from app.batch import readable_result

    png, jpg = tmp_path / "a.png", tmp_path / "b.jpg"
    Image.fromarray(make_photo(64, 64)).save(png)
    Image.fromarray(make_photo(64, 64)).save(jpg, quality=90)
    assert readable_result(png) and readable_result(jpg)
    for f in (png, jpg):
        data = f.read_bytes()
        f.write_bytes(data[:-40])  # cut short
        assert not readable_result(f)
    (tmp_path / "c.png").write_text("old result from yesterday")
    assert not readable_result(tmp_path / "c.png")
