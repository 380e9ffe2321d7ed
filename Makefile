# The two commands a newcomer needs: `make demo` and `make test`. Both bootstrap .venv first.
PY := .venv/bin/python
DEMO_VIDEO = $(shell $(PY) -c "import importlib.util as u, pathlib as p; print(p.Path(u.find_spec('Pose2Sim').origin).parent / 'Demo_SinglePerson/videos/cam01.mp4')")

.PHONY: venv demo test lint bench clean

venv:
	@scripts/bootstrap.sh

# The main job: engine + Blender scene (bpy module) on the demo video → output/cam01/ (markers,
# angles, …), output/cam01.blend and output/cam01.fbx.
demo: venv
	$(PY) headless.py -- "$(DEMO_VIDEO)" --height 1.72 --mass 70 --out output --force \
		--blend output/cam01.blend --fbx output/cam01.fbx

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
