"""SynthReID through the real loaders: the book's embedded default dataset.

:mod:`reid.data.synthreid` writes the Market-1501 on-disk format (``bounding_box_train/``,
``bounding_box_test/`` with ``0000`` distractors and ``-1`` junk, ``query/``, ``gt_bbox/``,
``market_attribute.mat``) plus a VIPeR-style ``two_view/cam_a``, ``two_view/cam_b`` variant. This
entry reads them with the very code that reads the real datasets -- the Market-1501 reader
(:func:`~reid.data.datasets.market1501.load_market_layout`) and the Market attribute reader, or
the VIPeR reader for ``layout="two_view"`` -- so everything downstream is exercised on the real
formats. With ``root=None`` the cached ``smoke`` preset is generated on first use
(:func:`reid.data.synthreid.ensure`; cache dir ``$REID_DATA_HOME`` or ``~/.cache/reid-book``).
"""

from __future__ import annotations

import os
from pathlib import Path

from reid.data.datasets.attributes import load_attributes_option
from reid.data.datasets.base import DatasetInfo, ReIDDataset, locate_root
from reid.data.datasets.market1501 import ATTRIBUTE_FILE, load_market_layout
from reid.data.datasets.viper import load_viper
from reid.errors import ConfigError

INFO = DatasetInfo(
    name="synthreid",
    title="SynthReID",
    reference="the book's procedural generator, reid.data.synthreid (Market-1501 file formats)",
    source="generated locally: `reid data synth --out DIR`, or root=None for the cached smoke "
    "preset",
    layout="""
        <root>/                                 (the folder `reid data synth --out` wrote)
            bounding_box_train/  bounding_box_test/  query/  gt_bbox/
            market_attribute.mat
            two_view/cam_a/  two_view/cam_b/       (layout="two_view")
            synthreid.json
    """,
)

CANDIDATES: tuple[str, ...] = ("", "synthreid")
REQUIRED: tuple[str, ...] = ("bounding_box_train", "bounding_box_test", "query")
LAYOUTS: tuple[str, ...] = ("market", "two_view")


def ensure_cached(preset: str = "smoke", seed: int = 0, *, progress: bool = True, num_ids: int | None = None,
                  num_cameras: int | None = None) -> Path:
    """:func:`reid.data.synthreid.ensure`, with the cache's own failures said in the cache's terms.

    A cache folder that exists without its ``synthreid.json`` (a file deleted by hand, a copy cut
    short) is reported as a broken cache with the folder to delete, not as a ``--out`` the user
    never passed; temporary folders of generations killed earlier are removed first.
    """
    from reid.data import synthreid
    from reid.errors import DatasetError
    from reid.files import remove_stale_partials

    if preset in synthreid.PRESETS:
        target = synthreid.cache_folder(preset, seed, num_ids=num_ids, num_cameras=num_cameras)
        remove_stale_partials(target)
        if target.is_dir() and any(target.iterdir()) and not (target / "synthreid.json").is_file():
            raise DatasetError(
                f"the cached SynthReID set {target} is incomplete (it has no synthreid.json); delete that "
                "folder and run again to regenerate it."
            )
    try:
        return synthreid.ensure(preset, seed=seed, progress=progress, num_ids=num_ids, num_cameras=num_cameras)
    except OSError as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(
            f"cannot write the SynthReID cache under {synthreid.cache_dir()} ({exc.strerror or exc}); set "
            "REID_DATA_HOME to a writable folder."
        ) from None


def load_synthreid(
    root: str | os.PathLike[str] | None = None,
    *,
    layout: str = "market",
    preset: str = "smoke",
    seed: int = 0,
    relabel: bool = True,
    attributes: bool | str | os.PathLike[str] | None = None,
    multi_query: bool = True,
    num_test: int | None = None,
    num_splits: int = 10,
    split: int = 0,
) -> ReIDDataset:
    """Load a SynthReID root (``root=None``: the cached ``preset`` generated with ``seed``).

    ``layout="market"`` returns the Market-1501-style dataset with its attribute table;
    ``layout="two_view"`` the VIPeR-style two-camera variant as a
    :class:`~reid.data.datasets.base.TwoViewDataset` (``num_test``, ``num_splits``, ``split`` as
    for VIPeR, ignored by the Market layout; ``seed`` also seeds its splits).
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"layout={layout!r} is not one of {', '.join(LAYOUTS)}.")
    if root is None:
        root = ensure_cached(preset, seed=seed)
    if layout == "two_view":
        folder = locate_root(root, INFO, CANDIDATES, ("two_view/cam_a", "two_view/cam_b"))
        dataset = load_viper(
            folder / "two_view",
            num_test=num_test,
            num_splits=num_splits,
            split=split,
            seed=seed,
            relabel=relabel,
        )
        dataset.name, dataset.info = "synthreid", INFO
        dataset.notes.update(layout="two_view")
        return dataset
    folder = locate_root(root, INFO, CANDIDATES, REQUIRED)
    dataset = load_market_layout(
        folder, INFO, num_cameras=None, relabel=relabel, multi_query=multi_query
    )
    dataset.attributes = load_attributes_option(
        attributes, folder, ATTRIBUTE_FILE, "market1501", INFO
    )
    dataset.notes.update(layout="market", root=str(Path(folder)))
    return dataset
