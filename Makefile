# The two set-up commands of the README:
#   make demo   installs the runtime (no torch) and analyses a sample gait clip with the shipped model
#   make test   installs everything and runs the test suite
VENV ?= .venv
BIN := $(VENV)/bin
export GAITPOSE_VENV := $(VENV)

.PHONY: demo test lint install

demo:
	bash scripts/install.sh serve
	$(BIN)/gaitpose analyze tests/data/sports2d_walk.mp4 --out out/demo
	@echo "open out/demo/report.html"

test:
	bash scripts/install.sh all
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check .

install:
	bash scripts/install.sh all
