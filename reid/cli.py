"""The ``reid`` command line: ``reid data …``, ``reid train …``, ``reid evaluate …``.

Each command group lives next to the code it drives (``reid.data.commands``,
``reid.engine.commands``) and registers itself here, so this file stays a dispatcher.
Errors that a user can fix (a bad root, an unknown recipe, an impossible batch) are
raised as :class:`reid.errors.ReidError` and printed as one clear line (``reid: error: ...``)
with exit code 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from reid.errors import ReidError

# (module, attribute) pairs; each module exposes ``register(subparsers)`` which adds its
# sub-commands and sets ``func`` on the parsed namespace.
_COMMAND_GROUPS = ("reid.data.commands", "reid.engine.commands", "reid.study.commands")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reid",
        description="Person re-identification loss papers, replicated: data, training, evaluation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name in _COMMAND_GROUPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a group not written yet must not break the others
            if exc.name != module_name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]  # `reid train --nproc N` re-runs it under torchrun
    try:
        result = args.func(args)
    except ReidError as exc:
        # one line, whatever the message: a dataset error's layout tree is folded into it
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"reid: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("reid: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
