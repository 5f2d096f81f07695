"""Class names for class-conditional models: OpenAI's ImageNet 64 px checkpoints take one of the 1000
ImageNet-1k (ILSVRC 2012) classes, which users know by name ("golden retriever"), not by index (207).

The names ship in `resources/classes/imagenet.txt`, one class per line in index order, each line the
WordNet lemmas of its synset ("tabby, tabby cat"). Only a model with exactly 1000 classes is taken to
be an ImageNet one; any other class count has numbers only.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from .paths import resources_dir

IMAGENET_CLASSES = 1000
# Two pairs of classes are the same word in the list: their WordNet senses, added to the first
# lemma ("crane (bird)"), tell them apart wherever a name is shown or typed.
_SENSES = {134: "bird", 517: "lifting machine", 638: "tights", 639: "swimsuit"}


@lru_cache(maxsize=1)
def imagenet_names() -> tuple[str, ...]:
    """The 1000 ImageNet class lines (lemmas joined by ", "), index order."""
    path = resources_dir() / "classes" / "imagenet.txt"
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    names = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(names) != IMAGENET_CLASSES:  # a damaged install, not a user error: say which file
        raise RuntimeError(f"{path} lists {len(names)} classes, expected {IMAGENET_CLASSES}")
    for i, sense in _SENSES.items():
        first, *rest = names[i].split(", ")
        names[i] = ", ".join([f"{first} ({sense})", *rest])
    return tuple(names)


def class_names(num_classes: int | None) -> tuple[str, ...] | None:
    """Names for a model with `num_classes` classes, or None when it has none we know."""
    return imagenet_names() if num_classes == IMAGENET_CLASSES else None


def short_name(num_classes: int | None, index: int) -> str | None:
    """The first lemma of class `index` ("tabby" for 281), or None without names."""
    names = class_names(num_classes)
    return None if names is None or not 0 <= index < len(names) else names[index].split(", ")[0]


def describe(num_classes: int | None, index: int) -> str:
    """"281 tabby" with a name, "281" without."""
    name = short_name(num_classes, index)
    return str(index) if name is None else f"{index} {name}"


def parse_class(text: str, num_classes: int | None) -> int:
    """A class index from what a user typed: a number, or a name matching one of a class's lemmas
    (any case; "tabby cat", "Husky", "crane (bird)"). Raises ValueError with what went wrong and
    what might be meant: an out-of-range number, a name no class has (with the nearest names), a
    name several classes share ("cardigan": the corgi 264 and the sweater 474)."""
    text = text.strip()
    if not num_classes:
        raise ValueError("this model is not class-conditional (it takes no class)")
    try:
        index = int(text)
    except ValueError:
        index = None
    if index is not None:
        if not 0 <= index < num_classes:
            raise ValueError(f"must be in 0..{num_classes - 1} for this model, got {index}")
        return index
    names = class_names(num_classes)
    if names is None:
        raise ValueError(f"this model's {num_classes} classes have no names: give a number in 0..{num_classes - 1}")
    key = " ".join(text.lower().split())
    hits = [i for i, line in enumerate(names) if key in (lemma.lower() for lemma in line.split(", "))]
    if len(hits) == 1:
        return hits[0]
    if hits:
        options = "; ".join(f"{i} ({names[i]})" for i in hits)
        raise ValueError(f"{text!r} names several classes, give the number: {options}")
    # What might be meant: names that hold the words ("crane" -> "crane (bird)"), then look-alikes.
    lemmas = {lemma.lower(): i for i, line in enumerate(names) for lemma in line.split(", ")}
    guesses = [(i, names[i].split(", ")[0]) for i in search(num_classes, text, limit=5)]
    for lemma in difflib.get_close_matches(key, list(lemmas), n=5, cutoff=0.6):
        if len(guesses) < 5 and lemmas[lemma] not in (i for i, _ in guesses):
            guesses.append((lemmas[lemma], lemma))
    hint = "; did you mean " + ", ".join(f"{i} {g}" for i, g in guesses) + "?" if guesses else ""
    raise ValueError(f"no ImageNet class is called {text!r}{hint}")


def search(num_classes: int | None, text: str, limit: int = 20) -> list[int]:
    """Class indices whose number or lemmas match `text` (any case), the best first: the number
    itself, a lemma that is the text, a lemma with it as a word ("red fox" for "fox"), a word that
    starts with it ("foxhound" for "foxh"), then the rest that contain it; index order within each."""
    names = class_names(num_classes)
    key = " ".join(text.lower().split())
    if not num_classes:
        return []
    if not key:
        return list(range(min(limit, num_classes)))
    exact = [int(key)] if key.isascii() and key.isdigit() and int(key) < num_classes else []
    if names is None:
        return exact
    word = re.compile(rf"(?<![\w-]){re.escape(key)}(?![\w-])")
    prefix = re.compile(rf"(?<![\w-]){re.escape(key)}")
    tiers: list[list[int]] = [[], [], [], []]
    for i, line in enumerate(names):
        lemmas = [lemma.lower() for lemma in line.split(", ")]
        tier = (0 if key in lemmas else 1 if any(word.search(m) for m in lemmas)
                else 2 if any(prefix.search(m) for m in lemmas) else 3 if any(key in m for m in lemmas) else None)
        if tier is not None:
            tiers[tier].append(i)
    return list(dict.fromkeys(exact + [i for t in tiers for i in t]))[:limit]
