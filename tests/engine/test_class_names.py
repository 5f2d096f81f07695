"""ImageNet class names: the 64 px class-conditional models take a class by name as well as by number
(`engine.classes`, `--class-label`, `cstudio classes`)."""

from __future__ import annotations

import dataclasses

import pytest

from app.__main__ import main
from engine import Model, preset, save_model
from engine.classes import class_names, describe, imagenet_names, parse_class, search, short_name


def test_the_shipped_list_has_the_1000_classes_in_index_order():
    names = imagenet_names()
    assert len(names) == 1000 and len(set(names)) == 1000  # the two cranes and maillots told apart
    # Landmarks of the ILSVRC 2012 order (the index the released checkpoints were trained with).
    for index, first in {0: "tench", 1: "goldfish", 134: "crane (bird)", 207: "golden retriever", 281: "tabby",
                         333: "hamster", 517: "crane (lifting machine)", 639: "maillot (swimsuit)", 963: "pizza",
                         999: "toilet tissue"}.items():
        assert names[index].split(", ")[0] == first, (index, names[index])
    assert describe(1000, 281) == "281 tabby" and describe(10, 3) == "3" and short_name(1000, 1000) is None
    assert class_names(10) is None and class_names(None) is None


@pytest.mark.parametrize("text, index", [("207", 207), (" 0 ", 0), ("golden retriever", 207), ("Tabby Cat", 281),
                                         ("husky", 248), ("siberian  husky", 250), ("tandem", 444),
                                         ("Crane (bird)", 134), ("tank suit", 639)])
def test_a_class_is_taken_by_number_or_by_any_of_its_names(text, index):
    assert parse_class(text, 1000) == index


@pytest.mark.parametrize("text, classes, words", [
    ("1000", 1000, ["must be in 0..999", "got 1000"]),
    ("-1", 1000, ["must be in 0..999"]),
    ("cardigan", 1000, ["several classes", "264 (Cardigan, Cardigan Welsh corgi)", "474 (cardigan)"]),
    ("crane", 1000, ["did you mean", "134 crane (bird)", "517 crane (lifting machine)"]),
    ("²", 1000, ["no ImageNet class"]),
    ("golden retreiver", 1000, ["no ImageNet class", "did you mean", "207 golden retriever"]),
    ("tabby", 10, ["no names", "0..9"]),
    ("3", None, ["not class-conditional"]),
])
def test_what_no_class_matches_says_why_and_what_might_be_meant(text, classes, words):
    with pytest.raises(ValueError) as e:
        parse_class(text, classes)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_search_puts_the_number_then_names_that_start_with_the_words_first():
    assert search(1000, "207")[0] == 207
    hits = search(1000, "fox")
    # The word "fox" (wire-haired fox terrier, red, kit, Arctic, grey fox, fox squirrel), then foxhounds.
    assert set(hits[:6]) == {188, 277, 278, 279, 280, 335} and set(hits[6:8]) == {166, 167}, hits
    assert search(1000, "tabby cat")[0] == 281 and search(1000, "crane")[:2] == [134, 517]
    assert search(1000, "²") == [] and search(1000, "lifting")[0] == 517
    assert search(1000, "")[:3] == [0, 1, 2] and search(10, "3") == [3] and search(None, "x") == []


def test_cstudio_classes_finds_classes(capsys):
    assert main(["classes", "retriever"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in out] == ["205", "206", "207", "208", "209"]
    assert main(["classes", "no", "such", "thing"]) == 1
    assert "no ImageNet class name contains 'no such thing'" in capsys.readouterr().err
    assert main(["classes"]) == 0 and len(capsys.readouterr().out.splitlines()) == 1000


@pytest.fixture(scope="module")
def imagenet_like(tmp_path_factory):
    """The tiny preset with 1000 classes: names apply (only the class count makes a model an ImageNet one)."""
    spec = preset("tiny")
    cond = dataclasses.replace(spec, name="tiny-1000", unet=dataclasses.replace(spec.unet, num_classes=1000))
    path = tmp_path_factory.mktemp("cls") / "cond1000.safetensors"
    save_model(path, cond, Model.random(cond, seed=0, device="cpu", precision="fp32").denoiser.net.state_dict())
    return path


def test_class_label_takes_a_name_on_the_command_line(imagenet_like, tmp_path, capsys):
    m = ["--model", str(imagenet_like), "--quiet", "--steps", "1"]
    by_name, by_number = tmp_path / "name.png", tmp_path / "number.png"
    assert main(["generate", *m, "--class-label", "tabby cat", "--out", str(by_name)]) == 0, capsys.readouterr().err
    assert main(["generate", *m, "--class-label", "281", "--out", str(by_number)]) == 0
    assert by_name.read_bytes() == by_number.read_bytes()
    assert main(["generate", *m, "--class-label", "cardigan", "--out", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert "--class-label: 'cardigan' names several classes" in err and "Traceback" not in err
    assert main(["info", str(imagenet_like)]) == 0
    assert "class-conditional: 1000 classes (ImageNet; --class-label takes a number or a name)" in capsys.readouterr().out
