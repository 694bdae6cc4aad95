"""pytest settings for `pytest --nbval notebooks` (the notebook half of `make test`).

nbval re-executes every committed notebook and compares each cell's outputs with the committed
ones (after the substitutions of ``nbval_sanitize.cfg``). Two things are settled here:

* **The kernels' environment.** The Makefile exports ``MPLBACKEND=Agg`` (right for scripts and
  unit tests), but ipykernel installs its inline backend only when ``MPLBACKEND`` is unset, so under
  Agg a notebook's figures silently vanish and matplotlib warns on stderr; the kernels nbval starts
  inherit this process's environment, so we restore the inline backend for them, exactly as
  ``book/build.py`` does for papermill. Progress bars are switched off (``TQDM_DISABLE``) and
  the environment's own kernel spec is preferred (``JUPYTER_PREFER_ENV_PATH``).
* **stderr is not compared.** Warnings and progress bars are written to stderr; whether a library
  warns (a deprecation, a first-import notice) depends on versions and machines, not on the
  book's numbers. nbval 0.11 compares stderr streams like stdout, and a stream present on one side
  only fails the cell, which no sanitising regex can fix, so stderr outputs are dropped from both
  sides before comparison. Everything a notebook wants checked goes to stdout or a display.

Images (``image/png``, ``image/jpeg``) are never compared by nbval (unless ``--nbdime``); a figure is
checked through its ``text/plain`` line (``<Figure size 900x300 with 3 Axes>``).
"""

from __future__ import annotations

import os
import warnings

os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("TQDM_DISABLE", "1")

# Editor/Jupyter checkpoint copies are not notebooks of the book.
collect_ignore_glob = [".ipynb_checkpoints/*", "*-checkpoint.ipynb"]


def _drop_stderr(outputs):
    return [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]


try:
    from nbval.plugin import IPyNbCell

    _compare_outputs = IPyNbCell.compare_outputs

    def _compare_outputs_without_stderr(self, test, ref, skip_compare=None):
        return _compare_outputs(self, _drop_stderr(test), _drop_stderr(ref), skip_compare)

    IPyNbCell.compare_outputs = _compare_outputs_without_stderr
except (ImportError, AttributeError):  # pragma: no cover - nbval missing or reorganised
    warnings.warn("nbval.plugin.IPyNbCell.compare_outputs not found: stderr outputs will be compared", stacklevel=1)
