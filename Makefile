# Two entry points (see README.md): `make book` and `make test`.
# Both create .venv when it is missing and (re)install it from the lock file when
# requirements-lock.txt or pyproject.toml is newer than the last install.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The book's environment: every package at an exact version, torch and torchvision as one pair.
# pyproject.toml keeps ranges for library users; `make lock` compiles this file from them.
LOCK   := requirements-lock.txt
NOTEBOOKS := scoreboard data_and_evaluation smc_ecd adaptive_margin support_neighbor view_adaptation joint_am_triplet benchmark
BUILD  := _build
# One intra-op thread per process: results are bit-identical whatever the core count, and
# torch's 2-thread kernels slow down ~10x when the 2 cores are shared (xdist workers, a
# kernel beside its notebook). The notebooks also call torch.set_num_threads(1).
export OMP_NUM_THREADS ?= 1
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: venv book notebooks site test test-unit test-full test-notebooks clean sync lock

venv: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null
	$(BIN)/python -m pip install -r $(LOCK)
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import torch, torchvision; print('torch', torch.__version__, '| torchvision', torchvision.__version__)"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

## make book: execute every notebook with papermill at its default (SynthReID, CPU)
## parameters into $(BUILD)/notebooks, then build the Jupyter Book site from them.
book: $(STAMP)
	$(BIN)/python book/build.py --build $(BUILD)
	@if $(BIN)/python -c "import sys; sys.path.insert(0, 'book'); import check_site; sys.exit(check_site.find_chromium() is None)"; then \
		$(BIN)/python book/check_site.py $(BUILD)/html --screenshots $(BUILD)/screenshots; \
	else echo "Chromium not found: skipping the browser check of the site (apt-get install chromium)"; fi

## make test: the whole suite - unit tests (the browser test of the site built from the committed
## notebooks included: screenshots in $(BUILD)/test-site/screenshots), then nbval over the notebooks.
test: $(STAMP)
	REID_SITE_BUILD=$(CURDIR)/$(BUILD)/test-site $(BIN)/python -m pytest -n 2 --dist loadfile tests
	$(BIN)/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks

test-unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile tests

## make test-full: the paper-scale path on the CPU - every recipe's full scale (ResNet-50 / VGG /
## part CNN at the paper's input size and batch) dry-run for 2 iterations, evaluated, results.json.
## One run at a time: ~9 CPU-minutes and up to ~9 GB of memory, so `make test` leaves it out.
test-full: $(STAMP)
	$(BIN)/python -m pytest -m full_dry_run tests/test_full_dry_run.py

# Re-pair .py and .ipynb after editing either side.
sync: $(STAMP)
	$(BIN)/jupytext --sync notebooks/*.py

## make lock: recompile requirements-lock.txt from pyproject.toml's ranges and the torch pair in
## requirements-pins.in (pip-tools; the resolver, never a hand edit).
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra dev --extra scale --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--output-file $(LOCK) pyproject.toml requirements-pins.in

clean:
	rm -rf $(BUILD) .pytest_cache
