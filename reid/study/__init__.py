"""Studies: the papers' claims tested over seeds, and what the chapters read from finished runs.

* :mod:`.run_features` — a finished run's saved features, ranked with the library's metrics.
"""
