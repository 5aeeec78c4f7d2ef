# The course's commands. `make book` and `make test` install what they need on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install book test test-book bench-build bench-reading bench-load bench-grading bench-gradescope bench-otter bench-bundle-setup sync clean

$(STAMP): pyproject.toml instructor/pyproject.toml package-lock.json scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

install: $(STAMP)

## Build the HTML book into _build/html, executing every page (stale outputs are cleared first).
book: $(STAMP)
	bash scripts/setup_sandbox.sh
	$(PY) -m book.build

## Run the test suite (fast; the full book build is its own step: make test-book). Installs bubblewrap for the grader's sandbox.
test: $(STAMP)
	bash scripts/setup_sandbox.sh
	$(PY) -m pytest

## Build the whole book from a clean checkout (fail if any cell errors), then test the site in Chromium.
test-book: $(STAMP)
	bash scripts/setup_sandbox.sh
	bash scripts/setup_browser.sh
	$(PY) -m pytest -m book_build

## Print the cold (no cache) and warm (no change) build times of the book.
bench-build: $(STAMP)
	$(PY) -m book.build --benchmark

## Print the reading report of every page (main-path and folded minutes, diagrams, numbers per 100 words, questions), building the book first.
bench-reading: book
	$(PY) -m book.reading _build/html

## Regenerate the paired notebooks from the MyST sources (the .md is the source of truth).
sync: $(STAMP)
	$(PY) -m book.notebooks

clean:
	rm -rf _build

## Print how long loading the converted SmolLM2 takes in a fresh process (converting first if needed).
bench-load: $(STAMP)
	$(PY) scripts/bench_load.py

## Grade a generated class (200 students x every lab, half correct, half with a classic mistake) and print time per submission and lab, the total, and peak memory (BENCH_GRADING="--submissions 100" for a smaller one).
BENCH_GRADING ?= --students 200
bench-grading: $(STAMP)
	bash scripts/setup_sandbox.sh
	$(PY) scripts/bench_grading.py $(BENCH_GRADING)

## Print the time and peak memory of the reference solution graded by each lab's Gradescope bundle (all CPUs and one), and the largest peak of its classic mistakes (one CPU).
bench-gradescope: $(STAMP)
	bash scripts/setup_sandbox.sh
	$(PY) scripts/bench_gradescope.py

## Grade lab 1 with otter-grader (installed into .venv-otter on first use) and with llm-grade, side by side on the same submissions: otter run per submission, llm-grade cold per submission and in a batch, the ratios, and whether the scores agree.
bench-otter: $(STAMP)
	bash scripts/setup_sandbox.sh
	VENV=$(VENV) bash scripts/setup_otter.sh
	$(PY) -m autograder.peer --otter .venv-otter/bin/otter

## Run lab 1's Gradescope setup.sh as Gradescope builds the image (pinned constraints) beside the unpinned install it replaced, each in a fresh pip cache: time and installed size.
bench-bundle-setup: $(STAMP)
	$(PY) scripts/bench_bundle_setup.py --labs lab1
