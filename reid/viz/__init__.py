"""Plots and tables for the book's notebooks.

``reid.viz.common`` holds what every chapter uses (CMC curves, t-SNE, ranked lists, paper-vs-ours
tables, camera-pair heat maps, results.json readers). Each paper chapter may add its own module
``reid.viz.<chapter>`` for its mechanism toy, imported below with one line.
"""

from reid.viz.common import (
    DATASET_NAMES,
    Table,
    compare_with_paper,
    load_log,
    load_results,
    make_table,
    plot_camera_pair_matrix,
    plot_cmc,
    plot_seed_spread,
    plot_tsne,
    run_cmc,
    run_label,
    show_identity_grid,
    show_ranked_lists,
    show_records,
)

__all__ = [
    "DATASET_NAMES",
    "Table",
    "compare_with_paper",
    "load_log",
    "load_results",
    "make_table",
    "plot_camera_pair_matrix",
    "plot_cmc",
    "plot_seed_spread",
    "plot_tsne",
    "run_cmc",
    "run_label",
    "show_identity_grid",
    "show_ranked_lists",
    "show_records",
]

# Chapter modules (one import line each, added by the chapter's author):
