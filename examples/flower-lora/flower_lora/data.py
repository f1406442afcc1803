"""WordNet noun glosses labelled with their lexicographer file, split over clients.

Debian's `wordnet-base` installs `/usr/share/wordnet/data.noun`: one synset a line, its second
field the lexicographer file (`05` is noun.animal, ...) and its gloss after `| `. The text is the
gloss's definition (the part before the first quoted example), the label one of ten files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

DATA_NOUN = os.environ.get("WORDNET_DATA_NOUN", "/usr/share/wordnet/data.noun")

# The ten lexicographer files (WordNet's lexnames numbering): the nine largest noun files and food.
CATEGORIES: Dict[str, str] = {
    "04": "act",
    "05": "animal",
    "06": "artifact",
    "10": "communication",
    "13": "food",
    "15": "location",
    "18": "person",
    "20": "plant",
    "26": "state",
    "27": "substance",
}
LABELS: List[str] = list(CATEGORIES.values())


@dataclass(frozen=True)
class Dataset:
    texts: List[str]
    labels: np.ndarray  # int64, index into LABELS


def read_glosses(path: str = DATA_NOUN) -> Dataset:
    """Every synset of the ten files: (definition, label)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: apt-get install wordnet-base (or set WORDNET_DATA_NOUN)")
    codes = list(CATEGORIES)
    texts: List[str] = []
    labels: List[int] = []
    with open(path, encoding="latin-1") as handle:
        for line in handle:
            if line.startswith("  "):  # the licence header
                continue
            head, _, gloss = line.partition("| ")
            fields = head.split()
            if len(fields) < 2 or fields[1] not in CATEGORIES:
                continue
            definition = gloss.strip().split('; "')[0].strip()
            if definition:
                texts.append(definition)
                labels.append(codes.index(fields[1]))
    return Dataset(texts, np.asarray(labels, dtype=np.int64))


def subsample(data: Dataset, per_class_train: int, per_class_test: int, seed: int = 0) -> Tuple[Dataset, Dataset]:
    """A class-balanced train pool and test set (disjoint), the same for every run of a seed."""
    rng = np.random.default_rng(seed)
    train: List[int] = []
    test: List[int] = []
    for label in range(len(LABELS)):
        index = rng.permutation(np.flatnonzero(data.labels == label))
        test.extend(index[:per_class_test].tolist())
        train.extend(index[per_class_test : per_class_test + per_class_train].tolist())
    train_index = rng.permutation(np.asarray(train))
    test_index = np.asarray(sorted(test))

    def pick(index: np.ndarray) -> Dataset:
        return Dataset([data.texts[i] for i in index], data.labels[index])

    return pick(train_index), pick(test_index)


def split(labels: np.ndarray, clients: int, alpha: float | None, seed: int, minimum: int = 8) -> List[np.ndarray]:
    """Indices per client: IID (alpha None), else Dirichlet(alpha) label skew (each class's
    samples divided by proportions drawn per class), redrawn until every client has `minimum`."""
    rng = np.random.default_rng(seed)
    if alpha is None:
        return [np.sort(part) for part in np.array_split(rng.permutation(len(labels)), clients)]
    for _ in range(1000):
        parts: List[List[int]] = [[] for _ in range(clients)]
        for label in np.unique(labels):
            index = rng.permutation(np.flatnonzero(labels == label))
            shares = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(index)).astype(int)
            for client, chunk in enumerate(np.split(index, cuts)):
                parts[client].extend(chunk.tolist())
        if min(len(p) for p in parts) >= minimum:
            return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    raise RuntimeError(f"no Dirichlet({alpha}) split gives every client {minimum} samples")


def label_histogram(labels: np.ndarray, parts: Sequence[np.ndarray]) -> List[List[int]]:
    return [np.bincount(labels[p], minlength=len(LABELS)).tolist() for p in parts]
