"""The sidebar offers every engine option: each `python -m engine run` flag is reachable from the
panel's property group (as the RunConfig field that flag sets), the panel's defaults are the
engine's, and every setting is drawn in one of the panels. Also: how the add-on finds its engine
and its wheels from the child process, and where it writes without a saved .blend file."""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import assert_drawn_names_exist, drawn, load_headless

bpy = pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[1]
pkg = load_headless().load_package()
settings = importlib.import_module("humanpose3d.operators.settings")
service = importlib.import_module("humanpose3d.engine.service")
cli = importlib.import_module("humanpose3d.engine.cli")
config = importlib.import_module("humanpose3d.engine.config")

# The engine's own CLI conveniences, not settings of a run.
CLI_ONLY = {"--quiet", "--debug", "--help"}
# Live state of a run, not settings.
STATE = {"progress", "stage", "running"}


@pytest.fixture(scope="module")
def props(addon):
    return bpy.context.scene.hp3d


def _reset(props) -> None:
    props.views.clear()
    for prop in props.bl_rna.properties:
        if not prop.is_readonly and prop.identifier not in ("rna_type", "name"):
            props.property_unset(prop.identifier)


def _run_options() -> dict[str, str]:
    """{flag: dest} of `engine run`'s options."""
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command").choices["run"]
    return {opt: a.dest for a in sub._actions for opt in a.option_strings if opt.startswith("--")}


def _config(props):
    return settings.run_config(props)


def _cases(tmp: Path) -> dict[str, tuple[dict, str, object]]:
    """flag → (panel settings, the RunConfig field the flag sets, the value the engine's parser
    gives that field from the flag)."""
    ckpt = str(tmp / "lifter.bin")
    calib = str(tmp / "calib.toml")
    return {
        "--calib": ({"views": ["/videos/clip2.mp4"], "calib_path": calib}, "calib", Path(calib)),
        "--sync-offsets": ({"views": ["/videos/clip2.mp4"], "calib_path": calib, "sync_offsets": "0,-3"},
                           "sync_offsets", (0, -3)),
        "--height": ({"height_m": 1.81}, "height_m", pytest.approx(1.81)),
        "--mass": ({"mass_kg": 82.5}, "mass_kg", pytest.approx(82.5)),
        "--out": ({"output_dir": str(tmp / "out")}, "out_dir", tmp / "out"),
        "--fov": ({"fov_deg": 70.0}, "fov_deg", pytest.approx(70.0)),
        "--focal-px": ({"focal_px": 1400.0}, "focal_px", pytest.approx(1400.0)),
        "--frames": ({"frame_start": 5, "frame_stop": 50}, "frames", (5, 50)),
        "--roi": ({"roi": (10, 20, 300, 600)}, "roi", (10, 20, 300, 600)),
        "--pose-model": ({"pose_model": "heavy"}, "pose_model", "heavy"),
        "--holistic": ({"holistic": True}, "holistic", True),
        "--people": ({"people": "All"}, "people", "all"),
        "--person-height": ({"people": "all", "person_heights": "2=1.65, #1=1.9"}, "person_heights",
                            ((2, 1.65), (1, 1.9))),
        "--person-mass": ({"people": "1,2", "person_masses": "1=80"}, "person_masses", ((1, 80.0),)),
        "--scail": ({"scail": True}, "scail", True),
        "--scail-size": ({"scail": True, "scail_size": (640, 480)}, "scail_size", (640, 480)),
        "--visibility-min": ({"visibility_min": 0.55}, "visibility_min", pytest.approx(0.55)),
        "--max-gap": ({"max_gap_s": 1.25}, "max_gap_s", pytest.approx(1.25)),
        "--estimate-missing": ({"estimate_missing": True}, "estimate_missing", True),
        "--cutoff-hz": ({"cutoff_hz": 8.0}, "cutoff_hz", pytest.approx(8.0)),
        "--filter-order": ({"filter_order": 6}, "filter_order", 6),
        "--free-bone-lengths": ({"hold_bone_lengths": False}, "hold_bone_lengths", False),
        "--no-fit": ({"fit_skeleton": False}, "fit_skeleton", False),
        "--no-foot-lock": ({"foot_lock": False}, "foot_lock", False),
        "--lifter": ({"lifter_path": ckpt}, "lifter", Path(ckpt)),
        "--lifter-layout": ({"lifter_path": ckpt, "lifter_layout": "h36m17"}, "lifter_layout", "h36m17"),
        "--augmentation-cycles": ({"augmentation_cycles": 2}, "augmentation_cycles", 2),
        "--no-angles": ({"joint_angles": False}, "joint_angles", False),
        "--no-plots": ({"angle_plots": False}, "angle_plots", False),
        "--svg": ({"angle_svg": True}, "angle_svg", True),
        "--opensim": ({"opensim": True}, "opensim", True),
        "--mesh": ({"mesh": True}, "mesh", True),
        "--mesh-format": ({"mesh": True, "mesh_formats": {"obj", "glb"}}, "mesh_formats", ("glb", "obj")),
        "--sex": ({"mesh": True, "sex": "female"}, "sex", "female"),
        "--age": ({"mesh": True, "age_years": 40}, "age_years", pytest.approx(40.0)),
        "--force": ({"overwrite": False}, "force", False),  # the panel replaces by default
    }


def test_every_engine_option_is_reachable_from_the_panel(props, tmp_path: Path) -> None:
    options = _run_options()
    cases = _cases(tmp_path)
    (tmp_path / "lifter.bin").write_bytes(b"checkpoint")  # RunConfig checks that both exist
    (tmp_path / "calib.toml").write_text("[cam_01]\n")
    # A new engine flag fails here until the panel offers it (or it is declared CLI-only).
    assert set(cases) == set(options) - CLI_ONLY, sorted(set(options) ^ set(cases) - CLI_ONLY)
    _reset(props)
    props.video_path = "/videos/clip.mp4"
    default = _config(props)
    fields = {f.name for f in dataclasses.fields(config.RunConfig)}
    for flag, (values, field, expected) in cases.items():
        assert field in fields, flag
        _reset(props)
        props.video_path = "/videos/clip.mp4"
        for name, value in values.items():
            if name == "views":  # a collection: one row per further video
                for path in value:
                    props.views.add().path = path
            else:
                setattr(props, name, value)
        cfg = _config(props)
        assert getattr(cfg, field) == expected, (flag, getattr(cfg, field))
        assert getattr(default, field) != getattr(cfg, field), flag  # the setting is what changed it
        assert (cfg.video, cfg.views) == (Path("/videos/clip.mp4"), tuple(map(Path, values.get("views", ()))))
    _reset(props)


def test_panel_defaults_are_the_engines(props, tmp_path: Path) -> None:
    """Untouched settings run the engine as its CLI does (Replace Existing aside: the panel's
    re-runs replace their own result)."""
    _reset(props)
    props.video_path, props.output_dir = "/videos/clip.mp4", str(tmp_path)
    panel = _config(props)
    plain = cli.config_from_args(cli.build_parser().parse_args(["run", "/videos/clip.mp4", "--height",
                                                                "1.72", "--out", str(tmp_path)]))
    differ = {f.name for f in dataclasses.fields(panel) if getattr(panel, f.name) != getattr(plain, f.name)}
    assert differ == {"force"}, differ
    props.overwrite = False
    assert _config(props) == plain
    _reset(props)


def test_options_of_a_stage_left_off_are_not_passed(props, tmp_path: Path) -> None:
    """Mesh, SCAIL size and lifter layout are only sent with their stage (the engine would take
    a mesh format and a SCAIL size as switching it on)."""
    _reset(props)
    props.video_path = "/videos/clip.mp4"
    props.mesh_formats, props.sex, props.age_years = {"ply"}, "male", 30
    props.scail_size = (640, 480)
    props.lifter_layout = "h36m17"
    cfg = _config(props)
    assert not (cfg.mesh or cfg.mesh_formats or cfg.sex or cfg.age_years or cfg.scail or cfg.scail_size)
    assert cfg.lifter_layout == "coco17" and cfg.lifter is None
    props.roi = (10, 10, 0, 100)  # no width: no box
    assert _config(props).roi is None
    _reset(props)


def test_every_setting_is_drawn_in_the_sidebar(props) -> None:
    sidebar = importlib.import_module("humanpose3d.panels.sidebar")
    shown: set[str] = set()
    for running in (False, True):
        props.running = running
        for panel in sidebar.CLASSES:
            calls = drawn(panel, bpy.context)
            assert_drawn_names_exist(calls, bpy.ops)
            for name, args, _ in calls:
                if name == "prop":
                    assert args[0] == props, args
                    shown.add(args[1])
                if name == "template_list":  # (list type, id, data, collection, data, active index)
                    assert args[2] == args[4] == props, args
                    shown.update((args[3], args[5]))
    props.running = False
    wanted = {p.identifier for p in props.bl_rna.properties} - {"rna_type", "name"} - STATE
    assert wanted <= shown, sorted(wanted - shown)
    for panel in sidebar.CLASSES[1:]:  # sub-panels of the main one, in the same sidebar tab
        assert panel.bl_parent_id == "HP3D_PT_main" and panel.bl_category == "HumanPose3D"
        assert hasattr(bpy.types, panel.bl_idname)


def test_unsaved_file_results_go_to_the_extensions_user_folder(props, monkeypatch) -> None:
    """A relative Output in an unsaved file: bpy.utils.extension_path_user of the extension
    (never the add-on's own folder); outside bl_ext.* (here) the temporary folder."""
    _reset(props)
    assert not bpy.data.filepath
    assert settings.output_dir(props) == Path(tempfile.gettempdir(), "hp3d_output")
    seen = []

    def fake(package, *, path="", create=False):
        seen.append((package, path, create))
        return f"/ext-user/{package}/{path}"

    monkeypatch.setattr(bpy.utils, "extension_path_user", fake)
    monkeypatch.setattr(settings, "ADDON_PACKAGE", "bl_ext.user_default.humanpose3d")
    assert settings.output_dir(props) == Path("/ext-user/bl_ext.user_default.humanpose3d/hp3d_output")
    assert seen == [("bl_ext.user_default.humanpose3d", "hp3d_output", True)]
    props.output_dir = "/abs/out"
    assert settings.output_dir(props) == Path("/abs/out")
    _reset(props)


def test_child_process_sees_the_parents_import_path(tmp_path: Path, monkeypatch) -> None:
    """Blender puts the extension's wheels (extensions/.local/…/site-packages) on sys.path inside
    Blender only: the engine's child process of Blender's own Python must get them too, and the
    add-on folder for `engine`, without any sys.path edit in the add-on."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "hp3d_probe_wheel.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(site))
    code = "import hp3d_probe_wheel, engine.errors; print('ok')"
    env = service.child_env(sys.executable)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)
    # Another interpreter (the user's Engine Python) gets the add-on folder, not our packages.
    other = service.child_env(str(tmp_path / "other" / "python")).get("PYTHONPATH", "").split(os.pathsep)
    assert other[0] == str(ROOT) and str(site) not in other


def test_addon_code_edits_no_import_path() -> None:
    """Extensions load as bl_ext.<repo>.humanpose3d: relative imports only, no sys.path edits."""
    private = {"tests", "benchmarks", "scripts", "wheels", "dist", "output"}
    tops = [p for p in ROOT.iterdir() if not p.name.startswith(".") and p.name not in private]
    shipped = [f for top in tops for f in ([top] if top.is_file() else top.rglob("*")) if f.suffix == ".py"]
    assert any(p.name == "child.py" and p.parent.name == "engine" for p in shipped)
    pattern = re.compile(r"sys\.path\s*(\.(insert|append|extend)|\[|\+?=)|site\.addsitedir")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in shipped
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders, offenders
