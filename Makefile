# Facet developer commands. `make run` starts the app locally, `make test` runs lint and the test suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Re-installs only when a requirements, constraints or torchvision-fix file is newer than this stamp.
INSTALL_STAMP := $(VENV)/.facet-install.stamp
INSTALL_INPUTS := requirements.txt requirements-dev.txt constraints.txt \
	scripts/fix_torchvision.py scripts/facet_torchvision_cpu_ops.py
YOLO_FONT := var/yolo/Ultralytics/Arial.ttf

# Nothing may download weights or assets at run time.
export HF_HUB_OFFLINE := 1
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := False
export YOLO_CONFIG_DIR := $(CURDIR)/var/yolo
export TORCH_HOME ?= $(CURDIR)/var/torch
# Playwright drives Debian's chromium (/usr/bin/chromium); it must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: help install chromium run test lint bench clean

help:
	@echo "make install  create .venv (Python 3.11) and install pinned dependencies"
	@echo "make run      migrate, create the demo account, start a Celery worker and the web server"
	@echo "make test     make lint, then pytest"
	@echo "make lint     ruff check, ruff format --check and lint-imports (the layer contract)"
	@echo "make bench    run the benchmarks (python -m bench)"
	@echo "make clean    remove .venv and caches (keeps var/: database, media, broker)"

install: $(INSTALL_STAMP) $(YOLO_FONT) chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALL_STAMP): $(BIN)/python $(INSTALL_INPUTS)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip check
	$(BIN)/python scripts/fix_torchvision.py
	@# A newer torch would have dragged in CUDA wheels, and OpenCV 5 has no Haar cascades.
	@if $(BIN)/python -m pip freeze | grep -iE '^(nvidia-cu|nvidia-cudnn|nvidia-nccl|triton==|opencv[a-z-]*==5)'; then \
		echo "install: unwanted CUDA or OpenCV 5 packages above; check constraints.txt" >&2; exit 1; fi
	touch $@

$(YOLO_FONT): $(INSTALL_STAMP)
	@# Ultralytics downloads Arial.ttf unless its config dir has one; matplotlib's DejaVuSans stands in.
	mkdir -p $(@D)
	cp "$$($(BIN)/python -c 'import matplotlib, pathlib; print(pathlib.Path(matplotlib.get_data_path(), "fonts/ttf/DejaVuSans.ttf"))')" $@

chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "install: Debian chromium for the Playwright browser tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "install: /usr/bin/chromium is missing and this is not a root Debian shell;" \
				"install Debian's chromium package to run the browser tests" >&2; \
		fi; \
	fi

run: install
	scripts/run_local.sh

test: install lint
	$(BIN)/pytest

# Style, formatting and the layer contract (pyproject.toml [tool.importlinter]).
lint: $(INSTALL_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
	find . -path ./var -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
