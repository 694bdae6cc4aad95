"""Identity-level attribute annotations of Market-1501 and DukeMTMC-reID.

Lin et al. annotated both datasets at the identity level ("Improving person re-identification by
attribute and identity learning", Pattern Recognition 95, 2019; files ``market_attribute.mat``
from the *Market-1501_Attribute* and ``duke_attribute.mat`` from the *DukeMTMC-attribute*
projects). Paper 004 (Sabri et al.) uses them for its attribute heads (27 Market attributes, 23
Duke attributes).

**File layout** (MAT v5, read with :func:`scipy.io.loadmat`): one 1x1 struct named
``market_attribute`` / ``duke_attribute`` with fields ``train`` and ``test``; each is a struct of
``1 x N`` uint8 rows, one per attribute, plus ``image_index``: a ``1 x N`` cell of 4-digit
identity strings (``'0002'``). Two traps, both handled here:

* the **field order differs between train and test** (and between the two files), so fields are
  always read by name, never by position;
* DukeMTMC-reID's ``train.top`` is ``0`` -- not a valid code -- for identities 0370 and 0679.
  Such cells become ``-1`` (missing) and are reported in :attr:`AttributeTable.invalid`.

**Normalised coding** (what :attr:`AttributeSplit.values` holds). The raw files code every
attribute as ``1``/``2`` (age ``1..4``). We subtract one, so a binary attribute is ``1`` when
the *second* option of the annotation's README holds and ``0`` for the first; ``-1`` marks an
invalid raw cell. The options, in raw order:

* ``gender``: male, female -> ``1`` = female.
* ``hair`` (Market): short, long -> ``1`` = long hair.
* ``up`` (Market, sleeve length): long, short -> ``1`` = short sleeves.
* ``top`` (Duke, upper-body clothing length): short, long **in the raw file** -- the opposite of
  Market's ``up``. We flip it, so after normalisation ``top == 1`` also means *short* upper-body
  clothing and the two datasets share one convention (``1`` = short, ``0`` = long).
* ``down`` (Market, lower-body clothing length): long, short -> ``1`` = short.
* ``clothes`` (Market, lower-body clothing type): dress, pants -> ``1`` = pants.
* ``shoes`` (Duke, shoe colour): dark, light -> ``1`` = light.
* ``age`` (Market): young, teenager, adult, old -> ``0..3``.
* everything else (``hat``, ``backpack``, ``bag``, ``handbag``, ``boots``, colour flags such as
  ``upblack`` / ``downblue``): no, yes -> ``1`` = yes.

:data:`ATTRIBUTE_MEANINGS` spells out the meaning of each normalised value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from reid.data.datasets.base import DatasetInfo
from reid.errors import DatasetError

#: Market-1501's 27 attributes in the order of the annotation README (not the file's order).
MARKET_ATTRIBUTES: tuple[str, ...] = (
    "gender", "hair", "up", "down", "clothes", "hat", "backpack", "bag", "handbag", "age",
    "upblack", "upwhite", "upred", "uppurple", "upyellow", "upgray", "upblue", "upgreen",
    "downblack", "downwhite", "downpink", "downpurple", "downyellow", "downgray", "downblue",
    "downgreen", "downbrown",
)  # fmt: skip

#: DukeMTMC-reID's 23 attributes in the order of the annotation README.
DUKE_ATTRIBUTES: tuple[str, ...] = (
    "gender", "top", "boots", "hat", "backpack", "bag", "handbag", "shoes",
    "upblack", "upwhite", "upred", "uppurple", "upgray", "upblue", "upgreen", "upbrown",
    "downblack", "downwhite", "downred", "downgray", "downblue", "downgreen", "downbrown",
)  # fmt: skip

#: Meaning of the normalised values of the non-"no/yes" attributes (index = normalised value).
ATTRIBUTE_MEANINGS: dict[str, tuple[str, ...]] = {
    "gender": ("male", "female"),
    "hair": ("short hair", "long hair"),
    "up": ("long sleeves", "short sleeves"),
    "top": ("long upper-body clothing", "short upper-body clothing"),
    "down": ("long lower-body clothing", "short lower-body clothing"),
    "clothes": ("dress", "pants"),
    "shoes": ("dark shoes", "light shoes"),
    "age": ("young", "teenager", "adult", "old"),
}

#: Number of valid raw codes per attribute (all others are binary: 2).
_NUM_CODES = {"age": 4}

#: Raw codes that are stored in the opposite order to the shared convention (see module doc).
_FLIPPED = {"dukemtmc": frozenset({"top"})}

_SPLITS = ("train", "test")


@dataclass(frozen=True)
class AttributeSplit:
    """One split of an attribute table.

    Attributes:
        pids: ``(N,)`` int64 raw identities (``image_index`` parsed: ``'0002'`` -> 2).
        values: ``(N, A)`` int64 normalised values (module doc); ``-1`` marks an invalid cell.
    """

    pids: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class AttributeTable:
    """Identity-level attributes of one dataset, normalised to a shared convention.

    Attributes:
        dataset: ``"market1501"`` or ``"dukemtmc"`` (decides the expected attribute names).
        names: attribute names, in the README order (:data:`MARKET_ATTRIBUTES` /
            :data:`DUKE_ATTRIBUTES`); the columns of every ``values`` array.
        train, test: :class:`AttributeSplit`.
        invalid: ``(split, pid, attribute, raw value)`` for every cell outside the valid codes
            (Duke: ``("train", 370, "top", 0)`` and ``("train", 679, "top", 0)``).
        path: the ``.mat`` file read.
    """

    dataset: str
    names: tuple[str, ...]
    train: AttributeSplit
    test: AttributeSplit
    invalid: tuple[tuple[str, int, str, int], ...]
    path: Path

    @property
    def num_attributes(self) -> int:
        return len(self.names)

    def split(self, name: str) -> AttributeSplit:
        """``"train"`` or ``"test"``."""
        if name not in _SPLITS:
            raise KeyError(f"unknown attribute split {name!r}; expected 'train' or 'test'")
        return getattr(self, name)

    def lookup(self, pids: np.ndarray | list[int], split: str) -> np.ndarray:
        """``(len(pids), A)`` values for raw ``pids`` of ``split``; unknown pids raise KeyError.

        Use :attr:`reid.data.datasets.ReIDDataset.train_raw_pids` to map relabelled training
        labels back to raw identities first.
        """
        table = self.split(split)
        row_of = {int(p): i for i, p in enumerate(table.pids)}
        try:
            rows = [row_of[int(p)] for p in np.asarray(pids).ravel()]
        except KeyError as err:
            raise KeyError(f"identity {err.args[0]} has no {split} attributes in {self.path}")
        return table.values[rows]

    def as_dict(self, pid: int, split: str) -> dict[str, int]:
        """The normalised attributes of one identity, by name."""
        return dict(zip(self.names, self.lookup([pid], split)[0].tolist(), strict=True))


def read_attribute_mat(
    path: str | os.PathLike[str], dataset: str, info: DatasetInfo | None = None
) -> AttributeTable:
    """Read ``market_attribute.mat`` (``dataset="market1501"``) or ``duke_attribute.mat``.

    Fields are looked up by name in each split (their order differs); a file without the expected
    struct, splits or attribute fields raises :class:`DatasetError` naming the file and what is
    missing.
    """
    path = Path(path)
    expected = {"market1501": MARKET_ATTRIBUTES, "dukemtmc": DUKE_ATTRIBUTES}.get(dataset)
    if expected is None:
        raise ValueError(f"attributes exist for market1501 and dukemtmc, not {dataset!r}")

    def fail(problem: str) -> DatasetError:
        message = f"attribute file {path}: {problem}"
        if info is not None:
            return info.error(message)
        return DatasetError(message + f" Expected the {dataset} attribute .mat layout.")

    if not path.is_file():
        raise fail("the file is missing.")
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as err:  # scipy raises several types for non-MAT / v7.3 content
        raise fail(f"not a readable MAT v5 file ({type(err).__name__}: {err}).") from err
    structs = [k for k in mat if not k.startswith("__")]
    if len(structs) != 1:
        raise fail(f"expected one top-level struct (e.g. market_attribute), found {structs}.")
    top = mat[structs[0]]
    if top.dtype.names is None or not set(_SPLITS) <= set(top.dtype.names):
        raise fail(f"the struct {structs[0]!r} has no 'train' and 'test' fields.")

    flipped = _FLIPPED.get(dataset, frozenset())
    invalid: list[tuple[str, int, str, int]] = []
    splits = {}
    for split in _SPLITS:
        node = top[split][0, 0]
        fields = set(node.dtype.names or ())
        missing = [n for n in (*expected, "image_index") if n not in fields]
        if missing:
            raise fail(f"the {split} split lacks the field(s) {', '.join(missing)}.")
        try:
            pids = np.array([int(np.ravel(c)[0]) for c in np.ravel(node["image_index"][0, 0])])
        except (ValueError, IndexError) as err:
            raise fail(f"{split}.image_index does not hold 4-digit identity strings.") from err
        columns = []
        for name in expected:
            raw = np.ravel(node[name][0, 0]).astype(np.int64)
            if raw.shape != pids.shape:
                raise fail(f"{split}.{name} has {raw.size} entries, image_index {pids.size}.")
            codes = _NUM_CODES.get(name, 2)
            bad = (raw < 1) | (raw > codes)
            value = np.where(bad, -1, raw - 1)
            if name in flipped:  # Duke `top`: raw short(1)/long(2) -> 1 = short, like Market `up`
                value = np.where(bad, -1, 1 - value)
            invalid.extend((split, int(pids[i]), name, int(raw[i])) for i in np.flatnonzero(bad))
            columns.append(value)
        splits[split] = AttributeSplit(pids=pids, values=np.stack(columns, axis=1))
    return AttributeTable(
        dataset=dataset,
        names=expected,
        train=splits["train"],
        test=splits["test"],
        invalid=tuple(invalid),
        path=path,
    )


def find_attribute_file(dataset_dir: Path, filename: str) -> Path | None:
    """The attribute file next to / above a dataset folder, where users usually unpack it.

    Tried in order: ``<dataset_dir>/<filename>``, ``<dataset_dir>/../<filename>``, and the
    annotation projects' folders (``Market-1501_Attribute/``, ``DukeMTMC-attribute/``) in both.
    """
    for base in (dataset_dir, dataset_dir.parent):
        for sub in ("", "Market-1501_Attribute", "DukeMTMC-attribute", "attribute"):
            candidate = base / sub / filename if sub else base / filename
            if candidate.is_file():
                return candidate
    return None


def load_attributes_option(
    option: bool | str | os.PathLike[str] | None,
    dataset_dir: Path,
    filename: str,
    dataset: str,
    info: DatasetInfo,
) -> AttributeTable | None:
    """Resolve a loader's ``attributes=`` option.

    ``None`` (default): load the file if it is found next to the dataset, else ``None``;
    ``True``: required, a clear error if absent; ``False``: skip; a path: read that file.
    """
    if option is False:
        return None
    if option is None or option is True:
        path = find_attribute_file(dataset_dir, filename)
        if path is None:
            if option is True:
                raise info.error(
                    f"attributes=True but no {filename} was found in {dataset_dir} or its parent "
                    f"(place it there, or pass attributes=PATH)."
                )
            return None
    else:
        path = Path(os.path.expanduser(os.fspath(option)))
    return read_attribute_mat(path, dataset, info)
