"""``reid data …``: generate SynthReID and check a dataset root.

    reid data synth --out DIR [--preset smoke] [--ids N] [--cameras C] [--seed S] [--difficulty D]
    reid data check --dataset NAME --root DIR [--option KEY=VALUE ...] [--decode]
"""

from __future__ import annotations

import argparse
import json

from reid.errors import ConfigError, DatasetError, ReidError
from reid.files import check_writable_folder, remove_stale_partials


def register(subparsers) -> None:
    """Add the ``data`` command group (``synth``, ``check``) to the top-level parser."""
    data = subparsers.add_parser("data", help="generate SynthReID or check a dataset root",
                                 description="Dataset commands.")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True

    synth = actions.add_parser(
        "synth", help="write a SynthReID dataset (Market-1501 layout + attributes + two-view variant)",
        description="Generate the procedural SynthReID dataset into a new directory. Options given "
                    "explicitly override the preset's values.")
    synth.add_argument("--out", required=True, help="new (or empty) directory to write")
    synth.add_argument("--preset", default="smoke", help="starting size: tiny, smoke or market (default smoke)")
    synth.add_argument("--ids", type=int, help="number of identities (half train, half test)")
    synth.add_argument("--cameras", type=int, help="number of cameras (2..9)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--difficulty", type=float, default=0.5, help="nuisance strength in [0, 1] (default 0.5)")
    synth.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    synth.set_defaults(func=_synth)

    check = actions.add_parser(
        "check", help="load a dataset root and print its statistics",
        description="Load a dataset with its loader and print ids / images / cameras per split; "
                    "a missing or malformed root gives one clear error and exit status 2.")
    check.add_argument("--dataset", required=True, help="loader name, e.g. market1501, cuhk03, synthreid")
    check.add_argument("--root", required=True, help="the dataset's root directory")
    check.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="loader option, repeatable (e.g. --option version=detected); "
                            "values are parsed as int/float/bool when they look like one")
    check.add_argument("--decode", action="store_true",
                       help="also decode every image, so corrupt files are found now rather than mid-training")
    check.add_argument("--no-progress", action="store_true", help="hide the progress bar of --decode")
    check.set_defaults(func=_check)


def _synth(args: argparse.Namespace) -> int:
    from reid.data import synthreid

    if args.preset not in synthreid.PRESETS:
        raise ConfigError(f"unknown --preset {args.preset!r}; choose one of {', '.join(synthreid.PRESETS)}")
    params = dict(synthreid.PRESETS[args.preset])
    if args.ids is not None:
        params["num_ids"] = args.ids
        for key in ("num_distractors", "num_junk", "two_view_ids"):   # scale with the new size
            params.pop(key, None)
    if args.cameras is not None:
        params["num_cameras"] = args.cameras
    out = check_writable_folder(args.out)
    remove_stale_partials(out)  # temporary folders of a generation killed earlier
    try:
        root = synthreid.generate(out, seed=args.seed, difficulty=args.difficulty,
                                  progress=not args.no_progress, **params)
    except OSError as exc:
        if isinstance(exc, ReidError):
            raise
        raise DatasetError(f"cannot write SynthReID to {out} ({exc.strerror or exc}); choose another --out.") from None
    counts = json.loads((root / "synthreid.json").read_text())["counts"]
    print(f"SynthReID {synthreid.VERSION} (seed {args.seed}, difficulty {args.difficulty}) written to {root}")
    for folder, count in counts.items():
        print(f"  {folder:<22} {count}")
    print(f"Load it with: reid data check --dataset synthreid --root {root}")
    return 0


def _parse_value(text: str):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _check(args: argparse.Namespace) -> int:
    from reid.data.datasets import load_dataset

    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r} is not KEY=VALUE; write e.g. --option split_id=0")
        options[key.strip()] = _parse_value(value.strip())
    dataset = load_dataset(args.dataset, args.root, **options)
    print(dataset.format_statistics())
    if args.decode:
        count = decode_all(dataset, progress=not args.no_progress)
        print(f"decoded all {count} images: every file is a readable image")
    return 0


def decode_all(dataset, *, progress: bool = True) -> int:
    """Decode every image of ``dataset`` once (train, query, gallery, multi-query); return the count.

    Raises :class:`DatasetError` listing the files that do not decode (the first five, and how
    many in all), so a corrupt JPEG is found before a long run instead of in the middle of it.
    """
    from tqdm.auto import tqdm

    from reid.data.image_dataset import read_image

    paths = dict.fromkeys(r.path for split in ("train", "query", "gallery", "multi_query")
                          for r in (getattr(dataset, split, None) or []))  # fmt: skip
    bad = []
    for path in tqdm(paths, desc="decoding", unit="img", disable=not progress):
        try:
            read_image(path)
        except DatasetError as exc:
            bad.append(f"{path}: {str(exc).split(' (', 1)[-1].split(';')[0].rstrip(')')}")
    if bad:
        shown = "; ".join(bad[:5]) + (f"; … and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DatasetError(f"{len(bad)} of {len(paths)} images do not decode: {shown}. Replace them from the "
                           "original archive (or regenerate SynthReID).")
    return len(paths)
