"""Batches: several files or a folder through upscale/colorize on the engine side, one bad file never stops them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.batch import plan
from app.model import BatchRequest, GenerationParams, Progress, Task
from engine.imageio import Picture, load_picture, save_picture

from .conftest import make_photo
from .fakes import make_controller


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    Image.fromarray(make_photo(16, 16, seed=1)).save(d / "a.png")
    rgb16 = make_photo(16, 16, seed=2).astype(np.uint16) * 257
    alpha16 = np.full((16, 16), 30000, np.uint16)
    save_picture(d / "b_deep.png", Picture(rgb=rgb16, alpha=alpha16, info={"text": {"Title": "scan"}}))
    (d / "c_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.fromarray(make_photo(16, 16, seed=3)).save(d / "d.jpg")
    (d / "notes.txt").write_text("not an image: ignored")
    return d


def _upscaling(tmp_path: Path, photo: Path | None = None):
    c, view, engine = make_controller(tmp_path, start=[str(photo)] if photo else None)
    c.set_params(task="upscale", upscale_factor=2, steps=1)
    progress: list[Progress] = []
    real = c.on_progress
    c.on_progress = lambda p: (progress.append(p), real(p))  # type: ignore[method-assign]
    view.reset_mock()
    return c, view, engine, progress


def test_dropping_a_folder_upscales_every_image_next_to_it(tmp_path: Path, folder: Path) -> None:
    existing = folder / "d_upscale_2x.png"
    existing.write_bytes(b"made by an earlier run")  # skip-existing: never overwritten
    c, view, engine, progress = _upscaling(tmp_path, folder / "a.png")
    doc = c.document
    assert c.run_batch([folder]) is not None and c.busy
    engine.process()
    assert not c.busy and c.document is doc  # the open document is not part of the batch
    assert (folder / "a_upscale_2x.png").is_file() and existing.read_bytes() == b"made by an earlier run"
    deep = load_picture(folder / "b_deep_upscale_2x.png")
    assert deep.rgb.dtype == np.uint16 and deep.size == (32, 32)
    assert deep.alpha is not None and deep.alpha.min() == deep.alpha.max() == 30000
    assert deep.info.get("text", {}).get("Title") == "scan"
    assert not (folder / "c_broken_upscale_2x.png").exists()
    status = view.set_status.call_args.args[0]
    assert "2 written, 1 skipped (output exists), 1 failed" in status
    title, message = view.show_error.call_args.args
    assert title == "Some files could not be processed" and message.startswith("c_broken.jpg:")
    stages = [p.stage for p in progress if p.stage]
    assert {"1/4 a.png", "2/4 b_deep.png", "3/4 c_broken.jpg", "4/4 d.jpg"} <= set(stages)
    # The bar is weighed by work (the engine's tiles), not 1000 units a file, and never goes back.
    done = [p.done for p in progress]
    assert progress[-1].done == progress[-1].total > 0 and done == sorted(done)
    # A second run finds every output in place and does not take its own outputs for inputs.
    c.run_batch([folder])
    engine.process()
    assert "0 written, 3 skipped (output exists), 1 failed" in view.set_status.call_args.args[0]
    assert not list(folder.glob("*_upscale_2x_upscale_2x.png"))


def test_several_files_into_a_chosen_folder_with_colorize(tmp_path: Path, folder: Path) -> None:
    c, view, engine, _ = _upscaling(tmp_path)
    c.set_params(task="colorize")
    out = tmp_path / "results"
    c.set_batch_out_dir(out)
    c.run_batch([folder / "a.png", folder / "d.jpg"])
    engine.process()
    assert sorted(p.name for p in out.iterdir()) == ["a_colorize.png", "d_colorize.png"]
    assert "2 written" in view.set_status.call_args.args[0]
    c.set_batch_out_dir(None)
    assert c.settings.batch_out_dir == ""


def cancel_at_stage(c, prefix: str) -> None:
    """Press Esc as soon as the batch reports the stage starting with `prefix` ("2/4": the second file)."""
    real = c.on_progress

    def on_progress(p: Progress) -> None:
        real(p)
        if p.stage.startswith(prefix):
            c.cancel()

    c.on_progress = on_progress


def test_cancel_stops_between_files_and_reports_what_was_done(tmp_path: Path, folder: Path) -> None:
    c, view, engine, progress = _upscaling(tmp_path)
    job = c.run_batch([folder])
    cancel_at_stage(c, "2/4")
    engine.process()
    assert job in engine.cancelled and not c.busy
    assert (folder / "a_upscale_2x.png").is_file() and not (folder / "b_deep_upscale_2x.png").exists()
    assert "1 written" in view.set_status.call_args.args[0] and "cancelled" in view.set_status.call_args.args[0]
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no half-written file


def test_batches_need_a_batch_task(tmp_path: Path, folder: Path) -> None:
    c, view, engine, _ = _upscaling(tmp_path)
    c.set_params(task="inpaint")
    assert c.run_batch([folder]) is None and not engine.queue
    assert "choose Upscale or Colorize" in view.set_status.call_args.args[0]


def test_a_drop_with_nothing_to_do_says_so_without_a_failed_task(tmp_path: Path) -> None:
    c, view, engine, _ = _upscaling(tmp_path)
    empty, notes, done = tmp_path / "empty", tmp_path / "notes", tmp_path / "done"
    empty.mkdir(), notes.mkdir(), done.mkdir()
    (notes / "readme.txt").write_text("no pictures here")
    (empty / "deeper").mkdir()
    Image.fromarray(make_photo(8, 8)).save(empty / "deeper" / "a.png")  # sub-folders are not read
    Image.fromarray(make_photo(8, 8)).save(done / "a_upscale_2x.png")  # an earlier result only
    assert c.run_batch([empty, notes, done]) is None and not engine.queue and not c.busy
    assert view.set_status.call_args.args[0].startswith("No images to upscale among the dropped items")
    view.show_error.assert_not_called()


def test_plan_names_outputs_like_the_cli(tmp_path: Path, folder: Path) -> None:
    req = BatchRequest(1, GenerationParams(task=Task.upscale, upscale_factor=4), (folder,), out_dir=tmp_path / "o")
    pairs = plan(req)
    assert [(s.name, d.relative_to(tmp_path).as_posix()) for s, d in pairs] == [
        ("a.png", "o/a_upscale_4x.png"), ("b_deep.png", "o/b_deep_upscale_4x.png"),
        ("c_broken.jpg", "o/c_broken_upscale_4x.png"), ("d.jpg", "o/d_upscale_4x.png")]


def test_fine_detail_batches_get_their_own_names_and_skip_earlier_outputs(tmp_path: Path) -> None:
    from app.batch import op_name

    for name in ("a.png", "a_upscale_4x.png", "a_upscale_2x_detail.png", "b_colorize.png", "upscale_4x.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    detail = GenerationParams(task=Task.upscale, upscale_factor=4, upscale_detail=True)
    assert op_name(detail) == "upscale_4x_detail"
    assert op_name(detail.replace(upscale_factor=2)) == "upscale_2x"  # x2 has no detail loop
    pairs = plan(BatchRequest(1, detail, (tmp_path,)))
    # Only the originals: the earlier batches' results (any task, factor or detail) are not inputs.
    assert sorted(src.name for src, _ in pairs) == ["a.png", "upscale_4x.png"]
    assert (tmp_path / "a.png", tmp_path / "a_upscale_4x_detail.png") in pairs


def test_plan_gives_every_input_its_own_output(tmp_path: Path) -> None:
    for name in ("a/img.png", "a/img.jpg", "b/img.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    params = GenerationParams(task=Task.upscale, upscale_factor=2)
    inputs = (tmp_path / "a", tmp_path / "b" / "img.png")
    beside = plan(BatchRequest(1, params, inputs))
    assert [d.relative_to(tmp_path).as_posix() for _, d in beside] == [
        "a/img_jpg_upscale_2x.png", "a/img_png_upscale_2x.png", "b/img_upscale_2x.png"]
    into = plan(BatchRequest(1, params, inputs, out_dir=tmp_path / "o"))
    assert [d.relative_to(tmp_path).as_posix() for _, d in into] == [
        "o/img_jpg_upscale_2x.png", "o/img_png_upscale_2x.png", "o/img-2_png_upscale_2x.png"]


def test_a_result_dropped_by_itself_is_processed_as_the_cli_does(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(make_photo(8, 8)).save(folder / "a.png")
    Image.fromarray(make_photo(8, 8)).save(folder / "a_upscale_2x.png")
    params = GenerationParams(task=Task.upscale, upscale_factor=2)
    in_folder = plan(BatchRequest(1, params, (folder,)))
    assert [src.name for src, _ in in_folder] == ["a.png"]  # an earlier result found in a folder: left out
    alone = plan(BatchRequest(2, params, (folder / "a_upscale_2x.png",)))
    assert [(src.name, dst.name) for src, dst in alone] == [("a_upscale_2x.png", "a_upscale_2x_upscale_2x.png")]


def test_an_unwritable_output_folder_fails_each_file_before_its_compute(tmp_path: Path, folder: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A read-only folder (chmod cannot show it when the tests run as root: os.access is faked) used
    # to cost every file its whole upscale before the write failed.
    import os

    import app.batch as batch

    out = tmp_path / "read-only"
    out.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == out else real_access(p, mode, **kw))

    def no_compute(*args, **kwargs):
        raise AssertionError("computed a result that could not be written")

    monkeypatch.setattr(batch, "task_call", no_compute)
    request = BatchRequest(1, GenerationParams(task=Task.upscale, upscale_factor=2), (folder / "a.png", folder / "d.jpg"),
                           out_dir=out)
    done = batch.run_batch(None, request, lambda done, total, stage: None)  # type: ignore[arg-type]
    assert done.written == () and [src.name for src, _ in done.failed] == ["a.png", "d.jpg"]
    assert all("not writable" in reason for _, reason in done.failed)
    assert list(out.iterdir()) == []


def test_a_colorize_batch_says_how_many_photos_had_colour(tmp_path: Path, folder: Path) -> None:
    c, view, engine, _ = _upscaling(tmp_path)
    c.set_params(task="colorize")
    grey = np.repeat(make_photo(16, 16, seed=4).mean(-1, keepdims=True).astype(np.uint8), 3, -1)
    Image.fromarray(grey).save(folder / "e_grey.png")
    c.set_batch_out_dir(tmp_path / "results")
    c.run_batch([folder / "a.png", folder / "d.jpg", folder / "e_grey.png"])
    engine.process()
    status = view.set_status.call_args.args[0]
    assert "3 written" in status and "2 of the photos already had colour" in status, status


# -- the file type batches write (File > Batch Results File Type; the CLI's --format) ----------------


def test_the_app_offers_the_formats_the_cli_writes() -> None:
    # app.model cannot import the engine, so its list is a copy: it must name what `--format` names
    # and only extensions the engine can write, or a batch would fail on every file at the save.
    from app.model.jobs import BATCH_FORMATS, batch_suffix
    from engine.cli import OUTPUT_FORMATS
    from engine.imageio import SAVE_FORMATS

    assert tuple(BATCH_FORMATS) == OUTPUT_FORMATS
    assert all(s in SAVE_FORMATS for s in BATCH_FORMATS.values() if s is not None)
    assert batch_suffix("same") is None and batch_suffix("jpg") == ".jpg" and batch_suffix("gif") == ".png"


def test_a_jpeg_batch_writes_jpegs_and_says_what_jpeg_leaves_out(tmp_path: Path, folder: Path) -> None:
    c, view, engine, _ = _upscaling(tmp_path)
    out = tmp_path / "results"
    c.set_batch_out_dir(out)
    c.set_batch_format("jpg")
    c.run_batch([folder / "a.png", folder / "b_deep.png"])
    assert engine.queue[0].suffix == ".jpg"  # carried in the request, not read by the worker from settings
    engine.process()
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a_upscale_2x.jpg", "b_deep_upscale_2x.jpg"]  # were always .png
    assert {Image.open(out / n).format for n in names} == {"JPEG"}
    status = view.set_status.call_args.args[0]
    assert "2 written" in status, status
    # b_deep has transparency: a JPEG cannot keep it, and the summary says so as a single save does.
    assert "JPEG keeps no transparency: the transparent parts were flattened onto white (1 file)" in status, status
    assert "(1 file)." in status and ".." not in status  # one period, not the note's and the summary's


def test_same_as_each_input_keeps_each_inputs_format(tmp_path: Path, folder: Path) -> None:
    c, view, engine, _ = _upscaling(tmp_path)
    Image.fromarray(make_photo(16, 16, seed=5)).save(folder / "e.webp", lossless=True)
    Image.fromarray(make_photo(16, 16, seed=6)).convert("P").save(folder / "f.gif")
    out = tmp_path / "results"
    c.set_batch_out_dir(out)
    c.set_batch_format("same")
    c.run_batch([folder / "a.png", folder / "d.jpg", folder / "e.webp", folder / "f.gif"])
    engine.process()
    formats = {p.name: Image.open(p).format for p in out.iterdir()}
    # A GIF's result is not a GIF (the editor writes none): PNG, as the CLI's --format same does.
    assert formats == {"a_upscale_2x.png": "PNG", "d_upscale_2x.jpg": "JPEG", "e_upscale_2x.webp": "WEBP",
                       "f_upscale_2x.png": "PNG"}, formats
    assert "4 written" in view.set_status.call_args.args[0]


def test_the_batch_format_survives_a_restart(tmp_path: Path) -> None:
    c, view, _, _ = _upscaling(tmp_path)
    assert c.batch_format == "png"  # the default: what batches always wrote
    c.set_batch_format("webp")
    assert "as .webp files" in view.set_status.call_args.args[0]
    with pytest.raises(ValueError):
        c.set_batch_format("gif")
    c2, _, _ = make_controller(tmp_path, load_model=False)  # a new start, the same settings file
    assert c2.batch_format == "webp"
    # A value this version does not know (a later version's, a hand edit) falls back to PNG.
    (tmp_path / "settings.json").write_text('{"batch_format": "heic"}')
    c3, _, _ = make_controller(tmp_path, load_model=False)
    assert c3.batch_format == "png"


def test_a_result_too_large_for_its_format_fails_before_its_compute(tmp_path: Path, folder: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # WebP holds 16383 px a side: a x4 upscale of a 4096 px photo used to compute for minutes, then
    # fail in the encoder. The limit is made small here so a 16 px photo's x2 result is over it.
    import app.batch as batch
    import engine.imageio as imageio

    monkeypatch.setitem(imageio.MAX_SIDE, "WEBP", 20)

    def no_compute(*args, **kwargs):
        raise AssertionError("computed a result that could not be written")

    monkeypatch.setattr(batch, "task_call", no_compute)
    request = BatchRequest(1, GenerationParams(task=Task.upscale, upscale_factor=2), (folder / "a.png",),
                           out_dir=tmp_path / "o", suffix=".webp")
    done = batch.run_batch(None, request, lambda done, total, stage: None)  # type: ignore[arg-type]
    assert done.written == () and len(done.failed) == 1
    assert "32x32 is over WebP's limit of 20 px a side" in done.failed[0][1], done.failed


def test_a_batch_whose_files_all_fail_leaves_no_empty_folder(tmp_path: Path) -> None:
    """The CLI removes the folders a batch made and left empty; the app's batch did not."""
    broken = tmp_path / "in"
    broken.mkdir()
    (broken / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    keep = tmp_path / "results"
    keep.mkdir()  # chosen by the user beforehand: stays, whatever happens
    c, view, engine, _ = _upscaling(tmp_path)
    c.set_batch_out_dir(keep / "new" / "deeper")
    c.run_batch([tmp_path / "in"])
    engine.process()
    assert "1 failed" in view.set_status.call_args.args[0]
    assert keep.is_dir() and not any(keep.iterdir())
