"""The chapters' mechanism toys: small simulations (2-D point clouds, toy batches) that show what
a loss does to an embedding before any network is trained.

One module per paper, named after its chapter (``reid.toys.smc_ecd``, …). A toy computes; it
never draws: the figures live in :mod:`reid.viz`, the losses in :mod:`reid.losses`.
"""
