# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make book   -> .venv, dependencies, the dlbook package, the whole book in _build/html
#   make test   -> the same set-up, then every test (package, chapters, strict build, site)
PYTHON ?= python3.11
# The chapters train small networks: for their matrices one BLAS thread is
# faster than two (thread start-up and spinning cost more than they gain).
export OPENBLAS_NUM_THREADS ?= 1
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: book book-strict test lab bench lint clean venv

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (dlbook)" >/dev/null
	touch $(STAMP)

# Build the whole book (executing every chapter, cached in _build/.jupyter_cache).
# The book's extension (_ext) sets DLBOOK_STATIC=1 for the notebook kernels, so
# the explorers render kernel-free sliders.
book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --builder html

# The strict build: every Sphinx warning and every notebook error fails it.
# It starts from nothing: the notebook cache does not notice changes to dlbook.
book-strict: $(STAMP)
	rm -rf _build
	$(VENV)/bin/jupyter-book build . --builder html -W -n --keep-going

test: $(STAMP)
	$(VENV)/bin/ruff check code tests benchmarks _ext
	$(PY) -m pytest tests -m "not book"
	$(MAKE) book-strict
	$(PY) -m pytest tests -m book

# (as root, e.g. in a container, Jupyter needs --allow-root)
lab: $(STAMP)
	$(VENV)/bin/jupyter lab chapters $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: $(STAMP)
	$(PY) benchmarks/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check code tests benchmarks _ext

clean:
	rm -rf _build .pytest_cache .hypothesis

# The "download the whole book" archive (also written into _build/html/_downloads
# by every HTML build): chapters of both languages without outputs, the dlbook
# package, pyproject.toml, requirements.txt, this Makefile and the README.
# Unzipped, `make lab` runs it (PyPI needed once, for the .venv).
.PHONY: archive
archive:
	python3 _ext/dlbook_publish.py _build/dlbook-book.zip
