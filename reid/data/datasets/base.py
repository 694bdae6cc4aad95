"""Shared machinery of the real-dataset loaders.

Every loader in :mod:`reid.data.datasets` does the same four things, and they live here once:

1. **Find the dataset** below a user-supplied root (:func:`locate_root`). Users already have the
   data on disk in the layouts of the common re-ID toolkits (torchreid / fast-reid /
   open-reid), e.g. ``<root>/market1501/Market-1501-v15.09.15/bounding_box_train``; each loader
   lists the obvious variants it accepts and the error names every path that was tried.
2. **List and parse filenames** without decoding a single image (:func:`scan_folder`,
   :func:`parse_filename`). Listing is cheap (one ``os.scandir`` per folder) and never touches
   pixels, so a loader can run on a tree of empty placeholder files.
3. **Relabel training identities** to ``0..N-1`` (:func:`relabel`), which a classification
   head needs. Query and gallery keep the raw identities, so Market-1501's ``-1`` (junk) and
   ``0000`` (distractor) labels survive for the evaluation protocol to handle.
4. **Fail clearly**: a missing root, a missing folder, an empty folder, a filename that does
   not parse or a list/.mat file with unexpected content raises one
   :class:`~reid.errors.DatasetError` that names the offending path, the expected layout and
   where the data comes from -- never an ``assert`` or a crash later in an image reader.

The result is a :class:`ReIDDataset` (train / query / gallery lists of
:class:`~reid.data.records.Record`) or, for the two-view benchmarks (VIPeR, CUHK01, PRID2011,
3DPeS, CUHK03 classic), a :class:`TwoViewDataset` which additionally keeps every record with
camid 0/1 and a list of seeded train/test identity splits.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from reid.data.records import Record
from reid.errors import ConfigError, DatasetError

#: File extensions treated as images when a folder is listed (lower-case comparison).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

#: ``<pid>_c<camera>...``: Market-1501, DukeMTMC-reID and SynthReID filenames
#: (``0002_c1s1_000451_03.jpg``, ``-1_c1s1_000401_03.jpg``, ``0005_c2_f0046985.jpg``).
PID_CAMERA_PATTERN = re.compile(r"^(-1|\d+)_c(\d+)")

#: Splits reported by :meth:`ReIDDataset.statistics`, in table order.
SPLIT_NAMES: tuple[str, ...] = ("train", "query", "gallery")


# --------------------------------------------------------------------------------------------
# Dataset descriptions and the one clear error
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """What a user needs to know to put a dataset where a loader finds it.

    Attributes:
        name: registry name (``"market1501"``).
        title: human name (``"Market-1501"``).
        reference: the paper that introduced the dataset / protocol.
        source: where the data comes from (official page or distribution name).
        layout: the expected directory tree, relative to ``--root``.
        fix: what to do about a missing or malformed dataset (default: download it yourself).
    """

    name: str
    title: str
    reference: str
    source: str
    layout: str
    fix: str = ("download the dataset yourself (it cannot be redistributed) and pass the folder "
                "that contains it as the root")

    def error(self, problem: str, *, tried: Iterable[Path | str] = ()) -> DatasetError:
        """Build the loader's one clear error: problem, paths tried, expected layout, source."""
        lines = [f"{self.title} ({self.name}): {problem}"]
        tried = [str(p) for p in tried]
        if tried:
            lines.append("Looked for the dataset in:")
            lines.extend(f"  {p}" for p in tried)
        lines.append("Expected layout (below --root):")
        lines.append(textwrap.indent(textwrap.dedent(self.layout).strip("\n"), "  "))
        lines.append(f"Where the data comes from: {self.source}")
        lines.append(f"Reference: {self.reference}")
        lines.append(f"Fix: {self.fix}, e.g. `reid data check --dataset {self.name} --root DIR`.")
        return DatasetError("\n".join(lines))


def locate_root(
    root: str | os.PathLike[str] | None,
    info: DatasetInfo,
    candidates: Sequence[str],
    required: Sequence[str],
) -> Path:
    """Return the first ``root / candidate`` that contains every ``required`` entry.

    ``candidates`` are relative paths tried in order (``""`` means the root itself), so a user can
    point ``--root`` at the toolkit's data folder, at the dataset folder, or at the unpacked
    archive. A ``required`` entry containing ``*`` is a glob (``"*.png"``) that must match at
    least one file. Raises :class:`DatasetError` listing every tried path when none fits.
    """
    return locate_root_variants(root, info, [(candidates, required)])[1]


def locate_root_variants(
    root: str | os.PathLike[str] | None,
    info: DatasetInfo,
    variants: Sequence[tuple[Sequence[str], Sequence[str]]],
) -> tuple[int, Path]:
    """Like :func:`locate_root` for several layouts: ``(index of the variant found, folder)``.

    ``variants`` is a list of ``(candidates, required)`` pairs tried in order (e.g. MSMT17 V1 then
    V2). The error lists every folder tried and what each variant needed.
    """
    if root is None:
        raise info.error("no root was given.")
    base = Path(os.path.expanduser(os.fspath(root)))
    if not base.exists():
        raise info.error(f"the root {base} does not exist.")
    if not base.is_dir():
        raise info.error(f"the root {base} is not a directory.")
    tried: list[Path] = []
    closest: tuple[int, Path, list[str], list[str]] | None = None  # the folder missing the fewest entries
    for index, (candidates, required) in enumerate(variants):
        for candidate in candidates:
            folder = base / candidate if candidate else base
            if folder.is_dir():
                present = [entry for entry in required if _has_entry(folder, entry)]
                if len(present) == len(required):
                    return index, folder
                missing = [entry for entry in required if entry not in present]
                if present and (closest is None or len(missing) < len(closest[3])):
                    closest = (len(missing), folder, present, missing)
            if folder not in tried:
                tried.append(folder)
    if closest is not None:  # a dataset folder with a part missing: name that part
        _, folder, present, missing = closest
        raise info.error(
            f"{folder} has {', '.join(present)} but no {', '.join(missing)} (an incomplete download or "
            "extraction?).",
            tried=tried,
        )
    needs = " or ".join("{" + ", ".join(required) + "}" for _, required in variants)
    raise info.error(f"no folder below the root contains {needs}.", tried=tried)


def _has_entry(folder: Path, entry: str) -> bool:
    """``entry`` exists in ``folder``; an entry with ``*`` is a glob that must match something."""
    if "*" in entry:
        return next(iter(folder.glob(entry)), None) is not None
    return (folder / entry).exists()


def require_file(path: Path, info: DatasetInfo, what: str) -> Path:
    """Return ``path`` if it is a file, else raise the dataset's clear error naming it."""
    if not path.is_file():
        raise info.error(f"{what} {path} is missing.")
    return path


# --------------------------------------------------------------------------------------------
# Listing and parsing
# --------------------------------------------------------------------------------------------


def scan_folder(
    folder: Path,
    info: DatasetInfo,
    *,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    allow_empty: bool = False,
) -> list[Path]:
    """List the image files directly inside ``folder``, sorted by name, without decoding them.

    Non-image files (``Thumbs.db``, ``readme.txt``) are ignored, as the toolkits do.
    """
    if not folder.is_dir():
        raise info.error(f"the folder {folder} is missing.")
    suffixes = tuple(e.lower() for e in extensions)
    try:
        with os.scandir(folder) as entries:
            files = [
                Path(entry.path)
                for entry in entries
                if entry.name.lower().endswith(suffixes) and entry.is_file()
            ]
    except PermissionError:
        raise info.error(
            f"the folder {folder} cannot be read (permission denied); make it readable "
            f"(chmod -R u+rX) or copy the dataset somewhere you can read."
        ) from None
    if not files and not allow_empty:
        raise info.error(f"the folder {folder} contains no images ({', '.join(suffixes)}).")
    return sorted(files, key=lambda p: p.name)


def parse_filename(path: Path | str, pattern: re.Pattern[str], info: DatasetInfo) -> re.Match[str]:
    """Match ``pattern`` against the file's name or raise a :class:`DatasetError` naming it."""
    name = os.path.basename(os.fspath(path))
    match = pattern.match(name)
    if match is None:
        raise info.error(
            f"the file {path} does not follow the dataset's naming scheme "
            f"(expected a name matching {pattern.pattern!r})."
        )
    return match


def scan_pid_camera_folder(
    folder: Path,
    info: DatasetInfo,
    *,
    num_cameras: int | None = None,
    pattern: re.Pattern[str] = PID_CAMERA_PATTERN,
    allow_empty: bool = False,
) -> list[Record]:
    """Records of a Market-style folder: ``<pid>_c<camera>...`` names, 1-based camera numbers.

    ``camid`` becomes 0-based (``c1`` -> 0). With ``num_cameras`` set, a camera number outside
    ``1..num_cameras`` is reported as malformed content rather than silently accepted.
    """
    records = []
    for path in scan_folder(folder, info, allow_empty=allow_empty):
        match = parse_filename(path, pattern, info)
        pid, camera = int(match.group(1)), int(match.group(2))
        if camera < 1 or (num_cameras is not None and camera > num_cameras):
            limit = f"1..{num_cameras}" if num_cameras is not None else ">= 1"
            raise info.error(f"the file {path} names camera {camera}; expected {limit}.")
        records.append(Record(str(path), pid, camera - 1))
    return records


def check_files_exist(paths: Iterable[str], info: DatasetInfo, listed_in: Path | str) -> None:
    """Raise a :class:`DatasetError` if any listed image is missing on disk.

    Used by list/.mat-driven loaders (MSMT17, CUHK03) so that a partial download fails at load
    time with the list file named, not epochs later in an image reader. One ``os.scandir`` per
    distinct parent folder keeps this fast on 100k-image lists.
    """
    present: dict[str, set[str] | None] = {}
    missing: list[str] = []
    for path in paths:
        parent, name = os.path.split(path)
        if parent not in present:
            try:
                with os.scandir(parent) as entries:
                    present[parent] = {entry.name for entry in entries}
            except (FileNotFoundError, NotADirectoryError):
                present[parent] = None
            except PermissionError:
                raise info.error(f"the folder {parent} cannot be read (permission denied).") from None
        names = present[parent]
        if names is None or name not in names:
            missing.append(path)
    if missing:
        shown = "\n".join(f"  {p}" for p in missing[:5])
        more = f"\n  ... and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise info.error(
            f"{len(missing)} image(s) listed in {listed_in} are missing on disk "
            f"(incomplete download or extraction?):\n{shown}{more}"
        )


# --------------------------------------------------------------------------------------------
# Identities
# --------------------------------------------------------------------------------------------


def relabel(records: Sequence[Record]) -> tuple[list[Record], tuple[int, ...]]:
    """Map raw training identities to ``0..N-1`` in sorted raw order.

    Returns the relabelled records and ``raw_pids`` with ``raw_pids[label] == raw pid``, so
    identity-level side information (attributes) can still be looked up after relabelling.
    """
    raw_pids = tuple(sorted({r.pid for r in records}))
    label_of = {pid: label for label, pid in enumerate(raw_pids)}
    return [Record(r.path, label_of[r.pid], r.camid) for r in records], raw_pids


def random_splits(
    pids: Iterable[int], *, num_test: int, num_splits: int, seed: int
) -> list[dict[str, list[int]]]:
    """``num_splits`` seeded random train/test partitions of ``pids`` with ``num_test`` test ids.

    The usual protocol of the small two-view benchmarks (VIPeR: 316/316 over 10 trials; CUHK01:
    485/486 or 871/100; PRID2011: 100/100 of the 200 shared persons). Deterministic for a seed:
    ``numpy.random.default_rng(seed)`` draws one permutation of the sorted ids per split.
    """
    pool = np.array(sorted(set(pids)), dtype=np.int64)
    if len(pool) < 2:
        raise DatasetError(
            f"the dataset has {len(pool)} usable identit{'y' if len(pool) == 1 else 'ies'}; a train/test split "
            "needs at least 2 (one to train on, one to test). The data looks incomplete: check that the "
            "image folders hold one image per person and view."
        )
    if not 0 < num_test < len(pool):
        raise ConfigError(
            f"num_test={num_test} must be between 1 and {len(pool) - 1} "
            f"(the dataset has {len(pool)} usable identities)."
        )
    if num_splits < 1:
        raise ConfigError(f"num_splits={num_splits} must be at least 1.")
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(num_splits):
        order = rng.permutation(pool)
        splits.append(
            {"train": sorted(order[num_test:].tolist()), "test": sorted(order[:num_test].tolist())}
        )
    return splits


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class ReIDDataset:
    """A re-ID dataset as lists of ``Record(path, pid, camid)``.

    Attributes:
        name: registry name.
        train: training records; pids relabelled to ``0..N-1`` unless loaded with
            ``relabel=False``.
        query, gallery: evaluation records with raw pids (Market-1501 keeps ``-1`` junk and
            ``0`` distractors in the gallery; the ranking protocol decides what to do with them).
        root: the folder the data was found in.
        train_raw_pids: ``train_raw_pids[label]`` is the raw identity behind a training label.
        junk_pids, distractor_pids: raw gallery labels with a special meaning (Market-1501:
            ``{-1}`` and ``{0}``); they are not counted as identities in :meth:`statistics`.
        attributes: optional identity-level attribute table
            (:class:`reid.data.datasets.attributes.AttributeTable`).
        splits: optional list of ``{"train": [pids], "test": [pids]}`` (two-view datasets).
        multi_query: optional extra query images for the multi-query protocol (Market-1501
            ``gt_bbox``), raw pids.
        info: the dataset description (layout, source, reference).
        notes: free-form provenance, e.g. where the splits came from.
    """

    name: str
    train: list[Record]
    query: list[Record]
    gallery: list[Record]
    root: Path | None = None
    train_raw_pids: tuple[int, ...] = ()
    junk_pids: frozenset[int] = frozenset()
    distractor_pids: frozenset[int] = frozenset()
    attributes: Any = None
    splits: list[dict[str, list[int]]] | None = None
    multi_query: list[Record] | None = None
    info: DatasetInfo | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_records(
        cls,
        name: str,
        train: Sequence[Record],
        query: Sequence[Record],
        gallery: Sequence[Record],
        *,
        relabel_train: bool = True,
        **kwargs: Any,
    ) -> ReIDDataset:
        """Assemble a dataset, relabelling the training identities when asked."""
        if relabel_train:
            train, raw = relabel(train)
        else:
            train, raw = list(train), tuple(sorted({r.pid for r in train}))
        return cls(name, list(train), list(query), list(gallery), train_raw_pids=raw, **kwargs)

    @property
    def num_train_pids(self) -> int:
        """Number of distinct training identities (the classifier's output size)."""
        return len({r.pid for r in self.train})

    def statistics(self) -> dict[str, dict[str, int]]:
        """Per split: ``ids`` (real identities), ``images``, ``cameras``, ``junk``, ``distractors``.

        ``ids`` excludes the special junk/distractor labels of query/gallery (the training split
        holds real identities only, relabelled from 0), so Market-1501's gallery reports the
        750 test identities while ``images`` counts all 19,732 files.
        """
        stats = {}
        for split in SPLIT_NAMES:
            records = getattr(self, split)
            # Special labels are raw gallery/query labels; relabelled training ids start at 0,
            # which must not be mistaken for Market's distractor label.
            junk = frozenset() if split == "train" else self.junk_pids
            distractor = frozenset() if split == "train" else self.distractor_pids
            stats[split] = {
                "ids": len({r.pid for r in records} - junk - distractor),
                "images": len(records),
                "cameras": len({r.camid for r in records}),
                "junk": sum(r.pid in junk for r in records),
                "distractors": sum(r.pid in distractor for r in records),
            }
        return stats

    def format_statistics(self) -> str:
        """An aligned text table of :meth:`statistics` (junk/distractor columns when present)."""
        stats = self.statistics()
        columns = ["ids", "images", "cameras"]
        columns += [c for c in ("junk", "distractors") if any(s[c] for s in stats.values())]
        header = [f"{self.name}", *columns]
        rows = [[split, *(str(stats[split][c]) for c in columns)] for split in SPLIT_NAMES]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
            return "  ".join([first, *rest])

        rule = "-" * len(line(header))
        return "\n".join([line(header), rule, *(line(row) for row in rows)])

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(getattr(self, s))}" for s in SPLIT_NAMES)
        return f"{type(self).__name__}(name={self.name!r}, {sizes}, root={str(self.root)!r})"


@dataclass(eq=False, repr=False)
class TwoViewDataset(ReIDDataset):
    """A two-camera benchmark: every record has camid 0 or 1, plus seeded identity splits.

    ``records`` holds all images with raw pids. For the chosen ``split_index``, ``train`` holds
    both views of the split's training identities (relabelled), ``query`` the camera-0 images
    and ``gallery`` the camera-1 images of its test identities (plus ``gallery_extra``, e.g.
    PRID2011's persons seen only by camera B). :meth:`select_split` switches split without
    re-reading the disk, so the single-shot two-view protocol can average over all splits.
    """

    records: list[Record] = field(default_factory=list)
    split_index: int = 0
    gallery_extra: list[Record] = field(default_factory=list)
    relabelled: bool = True

    @classmethod
    def build(
        cls,
        name: str,
        records: Sequence[Record],
        splits: list[dict[str, list[int]]],
        *,
        split_index: int = 0,
        relabel_train: bool = True,
        gallery_extra: Sequence[Record] = (),
        **kwargs: Any,
    ) -> TwoViewDataset:
        """Assemble the dataset for ``splits[split_index]``."""
        dataset = cls(
            name,
            [],
            [],
            [],
            records=list(records),
            splits=splits,
            gallery_extra=list(gallery_extra),
            relabelled=relabel_train,
            **kwargs,
        )
        return dataset.select_split(split_index)

    def select_split(self, index: int) -> TwoViewDataset:
        """A copy of this dataset whose train/query/gallery follow ``splits[index]``."""
        splits = self.splits or []
        if not 0 <= index < len(splits):
            raise ConfigError(
                f"split={index} is out of range: {self.name} has {len(splits)} splits "
                f"(0..{len(splits) - 1})."
            )
        train_ids, test_ids = set(splits[index]["train"]), set(splits[index]["test"])
        train = [r for r in self.records if r.pid in train_ids]
        query = [r for r in self.records if r.pid in test_ids and r.camid == 0]
        gallery = [r for r in self.records if r.pid in test_ids and r.camid == 1]
        if self.relabelled:
            train, raw = relabel(train)
        else:
            raw = tuple(sorted(train_ids))
        return replace(
            self,
            train=train,
            query=query,
            gallery=gallery + list(self.gallery_extra),
            train_raw_pids=raw,
            split_index=index,
        )


#: Signature every loader follows: ``loader(root, **options) -> ReIDDataset``.
Loader = Callable[..., ReIDDataset]
