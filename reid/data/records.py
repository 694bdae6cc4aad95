"""One labelled image: the unit every dataset loader returns and every sampler indexes."""

from __future__ import annotations

from typing import NamedTuple


class Record(NamedTuple):
    """An image path with its identity and camera.

    ``camid`` is 0-based (Market-1501's ``c1`` is camera 0). The tuple unpacks like the
    ``(path, pid, camid)`` triples of the common re-ID toolkits, so code written against
    them reads these records unchanged. ``pid`` keeps Market-1501's special values in
    query/gallery lists: ``-1`` for junk and ``0`` for distractors.
    """

    path: str
    pid: int
    camid: int
