# The two commands a newcomer needs: `make demo` and `make test`. Both bootstrap .venv first.
PY := .venv/bin/python
DEMO_VIDEO = $(shell $(PY) -c "import importlib.util as u, pathlib as p; print(p.Path(u.find_spec('Pose2Sim').origin).parent / 'Demo_SinglePerson/videos/cam01.mp4')")

.PHONY: venv venv-bpy42 demo test test-blender42 lint bench extension clean

venv:
	@scripts/bootstrap.sh

# .venv's engine stack with the Blender 4.2 LTS bpy module in front (scripts/bootstrap-bpy42.sh).
venv-bpy42: venv
	@scripts/bootstrap-bpy42.sh

# The main job: engine + Blender scene (bpy module) on the demo video → output/cam01/ (markers,
# angles, …), output/cam01.blend and output/cam01.fbx.
demo: venv
	$(PY) headless.py -- "$(DEMO_VIDEO)" --height 1.72 --mass 70 --out output --force \
		--blend output/cam01.blend --fbx output/cam01.fbx

test: venv
	@scripts/test_deps.sh
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests
	@$(MAKE) --no-print-directory test-blender42

# The add-on's tests again on Blender 4.2 LTS, the oldest Blender the manifest admits (5.0 above).
test-blender42: venv-bpy42
	.venv-bpy42/bin/python -m pytest -q tests/test_addon*.py

# The Blender extension: the runtime wheels (CPython 3.11 and 3.13) for linux-x64, windows-x64 and macos-arm64
# into wheels/ (once; pip from PyPI), then one validated package per platform in dist/
# (scripts/build_extension.py). Install one with Edit > Preferences > Get Extensions > Install from Disk.
extension: venv
	$(PY) scripts/build_extension.py

lint: venv
	$(PY) -m ruff check .

bench: venv
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/accuracy.py

clean:
	rm -rf output dist .pytest_cache .ruff_cache  # wheels/ stays: a download cache
