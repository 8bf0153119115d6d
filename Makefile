# The two commands a newcomer types: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-slow lint bench system-packages clean

$(STAMP): pyproject.toml constraints-ci.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints-ci.txt -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests use, installed when we can (root + apt), else the tests that need them say why they
# skipped: Fashion-MNIST's IDX files, and Chromium with its driver (and a CJK font) for the browser test.
system-packages:
	@missing=""; [ -d /usr/share/datasets/fashion-mnist ] || missing="dataset-fashion-mnist"; \
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || missing="$$missing chromium chromium-driver fonts-wqy-microhei"; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1)) || \
	  echo "note: could not install $$missing; the tests that need them will skip"; fi

demo: $(STAMP)
	$(VENV)/bin/vaekit demo

test: $(STAMP) system-packages
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache
