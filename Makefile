# The two commands a newcomer needs: `make demo` and `make test`. Both bootstrap .venv first.
PY := .venv/bin/python
DEMO_VIDEO = $(shell $(PY) -c "import importlib.util as u, pathlib as p; print(p.Path(u.find_spec('Pose2Sim').origin).parent / 'Demo_SinglePerson/videos/cam01.mp4')")

.PHONY: venv demo test lint bench clean

venv:
	@scripts/bootstrap.sh

demo: venv
	$(PY) -m engine run "$(DEMO_VIDEO)" --height 1.72 --mass 70 --out output --force

test: venv
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

lint: venv
	$(PY) -m ruff check .

bench: venv
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/accuracy.py

clean:
	rm -rf output .pytest_cache .ruff_cache
