"""Content-addressed cache folders under ``$REID_DATA_HOME`` (default ``~/.cache/reid-book``).

A cached artefact is only as good as the code that made it. Every folder the project keeps here is
therefore named by a hash of the *source code* and the *parameters* that produced it, never by a
hand-bumped version number: change one constant of the SynthReID generator, or one preset value,
and the next run looks for (and builds) a different folder instead of silently reusing stale data.
The libraries whose output bytes could differ (the JPEG encoder in Pillow, NumPy's random
streams, SciPy's filters) are part of the key for the same reason.

>>> key = content_key(sources=[b"VALUE = 1"], params={"seed": 0})
>>> key == content_key(sources=[b"VALUE = 2"], params={"seed": 0})
False
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

__all__ = ["data_home", "content_key", "module_source", "library_fingerprint"]

#: Characters of the SHA-256 hex digest kept in folder names (48 bits: collisions are not a concern
#: for the handful of folders a machine holds, and the names stay readable).
KEY_LENGTH = 12


def data_home(root: str | os.PathLike[str] | None = None) -> Path:
    """``root``, else ``$REID_DATA_HOME``, else ``~/.cache/reid-book``."""
    base = root if root is not None else os.environ.get("REID_DATA_HOME") or "~/.cache/reid-book"
    return Path(base).expanduser()


def module_source(module: ModuleType) -> bytes:
    """The bytes of ``module``'s source file (what the cache key hashes)."""
    return Path(module.__file__).read_bytes()


def library_fingerprint(*names: str) -> dict[str, str]:
    """``{name: version}`` of the given importable libraries (missing ones as ``"absent"``)."""
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def content_key(*, sources: Iterable[bytes | str], params: Mapping, length: int = KEY_LENGTH) -> str:
    """A short hex digest of ``sources`` (code) and ``params`` (JSON-serialisable settings).

    Each source is length-prefixed so that moving bytes from one source to the next changes the
    key; ``params`` are serialised with sorted keys so that dict order does not.
    """
    digest = hashlib.sha256()
    for source in sources:
        data = source.encode("utf-8") if isinstance(source, str) else bytes(source)
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    digest.update(json.dumps(params, sort_keys=True, default=str, separators=(",", ":")).encode("utf-8"))
    return digest.hexdigest()[:length]
