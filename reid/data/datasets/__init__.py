"""Real re-ID datasets, read from the layouts the common toolkits leave on disk.

>>> from reid.data.datasets import load_dataset
>>> data = load_dataset("market1501", "~/data")          # doctest: +SKIP
>>> print(data.format_statistics())                      # doctest: +SKIP

One module per dataset; the shared machinery (finding the root, listing and parsing filenames,
relabelling, the clear :class:`~reid.errors.DatasetError`) lives in :mod:`.base`:

==================  =====================================================================
name                loader (module)
==================  =====================================================================
``market1501``      :func:`.market1501.load_market1501` (multi-query ``gt_bbox``, attributes)
``dukemtmc``        :func:`.dukemtmc.load_dukemtmc` (attributes)
``cuhk03``          :func:`.cuhk03.load_cuhk03` (labeled/detected; 767/700 or classic 20 splits)
``msmt17``          :func:`.msmt17.load_msmt17` (V1/V2 list files)
``cuhk01``          :func:`.cuhk01.load_cuhk01` (two-view)
``viper``           :func:`.viper.load_viper` (two-view)
``prid2011``        :func:`.prid2011.load_prid2011` (single-shot, two-view + distractors)
``threedpes``       :func:`.threedpes.load_threedpes` (two-view from 8 cameras)
``synthreid``       :func:`.synthreid.load_synthreid` (Market layout of a SynthReID root)
``market_layout``   :func:`.market_layout.load_market_layout_folder` (any folder in Market naming)
==================  =====================================================================

Your own loader joins them with :func:`register_dataset`.

Attribute files: :mod:`.attributes`.
"""

from __future__ import annotations

import inspect
import os
import re
from typing import Any

from reid.data.datasets.attributes import AttributeSplit, AttributeTable, read_attribute_mat
from reid.data.datasets.base import DatasetInfo, Loader, ReIDDataset, TwoViewDataset
from reid.data.datasets.cuhk01 import load_cuhk01
from reid.data.datasets.cuhk03 import load_cuhk03
from reid.data.datasets.dukemtmc import load_dukemtmc
from reid.data.datasets.market1501 import load_market1501, multi_query_groups
from reid.data.datasets.market_layout import load_market_layout_folder
from reid.data.datasets.msmt17 import load_msmt17
from reid.data.datasets.prid2011 import load_prid2011
from reid.data.datasets.synthreid import load_synthreid
from reid.data.datasets.threedpes import load_threedpes
from reid.data.datasets.viper import load_viper
from reid.errors import ConfigError, DatasetError, ReidError

#: Registry: dataset name -> loader ``(root, **options) -> ReIDDataset``.
DATASETS: dict[str, Loader] = {
    "market1501": load_market1501,
    "dukemtmc": load_dukemtmc,
    "cuhk03": load_cuhk03,
    "msmt17": load_msmt17,
    "cuhk01": load_cuhk01,
    "viper": load_viper,
    "prid2011": load_prid2011,
    "threedpes": load_threedpes,
    "synthreid": load_synthreid,
    "market_layout": load_market_layout_folder,
}


#: Other spellings of the registry names (after lower-casing and dropping ``-``, ``_``, spaces).
ALIASES: dict[str, str] = {"dukemtmcreid": "dukemtmc", "3dpes": "threedpes", "marketlayout": "market_layout"}


def dataset_name(name: str) -> str:
    """The registry name of ``name``, whatever its spelling: ``Market-1501``, ``Market1501``,
    ``market_1501`` -> ``market1501``; ``DukeMTMC-reID`` -> ``dukemtmc``; ``3DPeS`` -> ``threedpes``.

    Every command (``reid train``, ``reid data check``) and :func:`load_dataset` go through it,
    so they accept the same names. Raises :class:`ConfigError` for an unknown dataset.
    """
    key = re.sub(r"[\s_\-]", "", name.lower()) if isinstance(name, str) else None
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}.")
    return key


def dataset_options(name: str) -> list[str]:
    """The keyword options a dataset's loader accepts (``root`` excluded)."""
    signature = inspect.signature(_loader(name))
    return [p for p in signature.parameters if p != "root"]


def register_dataset(name: str, loader: Loader, *, aliases: tuple[str, ...] = (), replace: bool = False) -> None:
    """Make ``loader`` available as dataset ``name`` to :func:`load_dataset`, ``reid train
    --dataset`` and ``reid data check`` (in this process; call it from a module you import).

    ``loader(root, **options)`` returns a :class:`ReIDDataset` of ``(path, pid, camid)`` records
    (see :func:`ReIDDataset.from_records`); its keyword options become ``--option key=value``.
    ``name`` is lower-case letters, digits and underscores; ``aliases`` are other spellings. An
    existing name is refused unless ``replace`` is true.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ConfigError(f"dataset name {name!r}: use lower-case letters, digits and underscores, e.g. 'my_cameras'.")
    if not callable(loader):
        raise ConfigError(f"register_dataset({name!r}, ...): the loader must be a function (root, **options) -> ReIDDataset.")
    key = re.sub(r"[\s_\-]", "", name)
    if (name in DATASETS or key in DATASETS or key in ALIASES) and not replace:
        raise ConfigError(f"a dataset named {name!r} is already registered; pick another name or pass replace=True.")
    DATASETS[name] = loader
    if key != name:
        ALIASES[key] = name
    for alias in aliases:
        ALIASES[re.sub(r"[\s_\-]", "", alias.lower())] = name


def _loader(name: str) -> Loader:
    return DATASETS[dataset_name(name)]


def load_dataset(name: str, root: str | os.PathLike[str] | None, **options: Any) -> ReIDDataset:
    """Load dataset ``name`` found below ``root``; ``options`` go to its loader.

    Raises:
        ConfigError: unknown ``name``, or an option the loader does not take (the message lists
            the accepted ones).
        DatasetError: the root is missing or does not hold the dataset in an accepted layout
            (the message names the layout, the paths tried and where the data comes from).
    """
    loader = _loader(name)
    parameters = inspect.signature(loader).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = sorted(set(options) - set(parameters) - {"root"})
    if unknown and not takes_any:
        accepted = ", ".join(dataset_options(name)) or "none"
        raise ConfigError(
            f"dataset {name!r} does not take the option(s) {', '.join(unknown)}; "
            f"accepted: {accepted}."
        )
    for key, value in options.items():
        if key in parameters:
            _check_option_type(name, parameters[key], value)
    try:
        return loader(root, **options)
    except ReidError:
        raise
    except OSError as exc:  # unreadable folder or file (permissions, I/O): one clear line, not a traceback
        where = exc.filename or root
        reason = exc.strerror or type(exc).__name__
        raise DatasetError(
            f"{dataset_name(name)}: cannot read {where} ({reason}); make the dataset readable "
            "(e.g. chmod -R u+rX) or copy it somewhere you can read."
        ) from None


_SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,), "int": (int,), "float": (int, float), "str": (str,), "None": (type(None),),
}  # fmt: skip


def _check_option_type(dataset: str, parameter: inspect.Parameter, value: Any) -> None:
    """A loader option annotated with plain types (``bool``, ``int | None`` …) must have one of them.

    So ``--option relabel=maybe`` is refused instead of read as a true string; options with richer
    annotations (paths) are left to the loader.
    """
    annotation = parameter.annotation
    names = [n.strip() for n in annotation.split("|")] if isinstance(annotation, str) else []
    if not names or any(n not in _SIMPLE_TYPES for n in names):
        return
    allowed = tuple(t for n in names for t in _SIMPLE_TYPES[n])
    if isinstance(value, bool) and "bool" not in names:
        allowed = ()
    if not isinstance(value, allowed):
        wanted = " or ".join("true/false" if n == "bool" else n for n in names)
        raise ConfigError(f"dataset {dataset!r}: option {parameter.name}={value!r} must be {wanted}.")


__all__ = [
    "DATASETS",
    "AttributeSplit",
    "AttributeTable",
    "DatasetInfo",
    "ReIDDataset",
    "TwoViewDataset",
    "dataset_name",
    "dataset_options",
    "load_cuhk01",
    "load_cuhk03",
    "load_dataset",
    "load_dukemtmc",
    "load_market1501",
    "load_market_layout_folder",
    "register_dataset",
    "load_msmt17",
    "load_prid2011",
    "load_synthreid",
    "load_threedpes",
    "load_viper",
    "multi_query_groups",
    "read_attribute_mat",
]
