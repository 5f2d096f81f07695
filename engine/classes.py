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


@lru_cache(maxsize=1)
def imagenet_names() -> tuple[str, ...]:
    """The 1000 ImageNet class lines (lemmas joined by ", "), index order."""
    path = resources_dir() / "classes" / "imagenet.txt"
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    names = tuple(ln for ln in lines if ln and not ln.startswith("#"))
    if len(names) != IMAGENET_CLASSES:  # a damaged install, not a user error: say which file
        raise RuntimeError(f"{path} lists {len(names)} classes, expected {IMAGENET_CLASSES}")
    return names


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
    (any case; "tabby cat", "Husky"). Raises ValueError with what went wrong and what might be meant:
    an out-of-range number, a name no class has (with the nearest names), a name several classes
    share ("crane": the bird 134 and the machine 517)."""
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
    lemmas = {lemma.lower(): i for i, line in enumerate(names) for lemma in line.split(", ")}
    near = difflib.get_close_matches(key, list(lemmas), n=4, cutoff=0.6)
    contains = [lemma for lemma in lemmas if key and key in lemma][:4]
    guesses = list(dict.fromkeys(near + contains))[:5]
    hint = "; did you mean " + ", ".join(f"{lemmas[g]} {g}" for g in guesses) + "?" if guesses else ""
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
    exact = [int(key)] if key.isdigit() and int(key) < num_classes else []
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
