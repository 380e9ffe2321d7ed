"""SCAIL's cylinder rig and render in Blender (scene/scail_rig.py, scene/scail_scene.py): presets
on Rigify- and Mixamo-named armatures, a hand-keyed armature driving the cylinders, the rig's
joints where the engine puts SMPL's, and the Blender render's mask against the engine's render of
the same poses through the same camera (IoU), with Workbench and Cycles; the operator, the panel
and headless.py's --scail-blender."""

from __future__ import annotations

import importlib
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import assert_drawn_names_exist, demo_video, drawn, load_headless

bpy = pytest.importorskip("bpy")
from mathutils import Vector  # noqa: E402  (bpy first: mathutils ships with it)

ROOT = Path(__file__).resolve().parents[1]
SIZE = (128, 224)  # portrait like SCAIL's 512×896, small enough for a quick test
FRAMES = (0, 10)


headless = load_headless()
pkg = headless.load_package()
scail_rig = importlib.import_module("humanpose3d.scene.scail_rig")
scail_render = importlib.import_module("humanpose3d.scene.scail_scene")
build = importlib.import_module("humanpose3d.scene.build")
coords = importlib.import_module("humanpose3d.engine.coords")
engine_render = importlib.import_module("humanpose3d.engine.capsule_render")
world_frame = importlib.import_module("humanpose3d.engine.world_frame")
smpl24 = importlib.import_module("humanpose3d.engine.smpl24")
SMPL = smpl24.SMPL


@pytest.fixture(autouse=True, scope="module")
def _clean_blender():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _empty_scene() -> bpy.types.Scene:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def _armature(bones: dict[str, tuple], name: str = "Rig") -> bpy.types.Object:
    """An armature from {name: (head, tail, parent)} in world metres."""
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for bone, (head, tail, _) in bones.items():
        eb = data.edit_bones.new(bone)
        eb.head, eb.tail = Vector(head), Vector(tail)
    for bone, (_, _, parent) in bones.items():
        if parent:
            data.edit_bones[bone].parent = data.edit_bones[parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def _humanoid(names: dict[str, str], joints: dict[str, np.ndarray]) -> dict[str, tuple]:
    """Bones named by `names` (our role → the rig's bone name) between SMPL-like joint positions."""
    j = joints
    bones = {
        "hips": (j["pelvis"], j["spine1"], None), "spine": (j["spine1"], j["neck"], "hips"),
        "neck": (j["neck"], j["head"], "spine"), "head": (j["head"], j["head"] + (0, 0, 0.15), "neck"),
    }
    for s in ("left", "right"):
        bones |= {
            f"{s}_arm": (j[f"{s}_shoulder"], j[f"{s}_elbow"], "spine"),
            f"{s}_forearm": (j[f"{s}_elbow"], j[f"{s}_wrist"], f"{s}_arm"),
            f"{s}_hand": (j[f"{s}_wrist"], j[f"{s}_hand"], f"{s}_forearm"),
            f"{s}_thigh": (j[f"{s}_hip"], j[f"{s}_knee"], "hips"),
            f"{s}_shin": (j[f"{s}_knee"], j[f"{s}_ankle"], f"{s}_thigh"),
            f"{s}_foot": (j[f"{s}_ankle"], j[f"{s}_foot"], f"{s}_shin"),
        }
    return {names[k]: (tuple(h), tuple(t), names.get(p) if p else None) for k, (h, t, p) in bones.items()}


def _names(prefix: str, table: dict[str, str]) -> dict[str, str]:
    return {k: prefix + v for k, v in table.items()}


MIXAMO_NAMES = {"hips": "Hips", "spine": "Spine", "neck": "Neck", "head": "Head",
                **{f"{s}_{p}": f"{S}{q}" for s, S in (("left", "Left"), ("right", "Right"))
                   for p, q in (("arm", "Arm"), ("forearm", "ForeArm"), ("hand", "Hand"), ("thigh", "UpLeg"),
                                ("shin", "Leg"), ("foot", "Foot"))}}
RIGIFY_NAMES = {"hips": "spine", "spine": "spine.003", "neck": "spine.004", "head": "spine.006",
                **{f"{s}_{p}": f"{p2}.{S}" for s, S in (("left", "L"), ("right", "R"))
                   for p, p2 in (("arm", "upper_arm"), ("forearm", "forearm"), ("hand", "hand"),
                                 ("thigh", "thigh"), ("shin", "shin"), ("foot", "foot"))}}


def standing_pose_mm(z: float = 3000.0) -> np.ndarray:
    """SMPL-24 joints (mm, engine camera frame: y down) of a person facing the camera."""
    p = {
        "pelvis": (0, -100, 0), "left_hip": (60, 0, 0), "right_hip": (-60, 0, 0),
        "spine1": (0, -200, 0), "spine2": (0, -330, 0), "spine3": (0, -390, 0), "neck": (0, -600, 0),
        "head": (0, -700, -30), "left_collar": (80, -510, 0), "right_collar": (-80, -510, 0),
        "left_shoulder": (190, -560, 0), "right_shoulder": (-190, -560, 0),
        "left_elbow": (330, -330, -80), "right_elbow": (-330, -330, 60),
        "left_wrist": (420, -100, -200), "right_wrist": (-420, -100, 0),
        "left_hand": (440, -20, -220), "right_hand": (-440, -20, 0),
        "left_knee": (90, 420, -60), "right_knee": (-90, 420, 0),
        "left_ankle": (100, 820, 40), "right_ankle": (-100, 820, 0),
        "left_foot": (110, 880, -120), "right_foot": (-110, 880, -120),
    }
    j = np.zeros((24, 3))
    for name, xyz in p.items():
        j[SMPL[name]] = xyz
    j[:, 2] += z
    return j


def _world(joints_mm: np.ndarray) -> dict[str, np.ndarray]:
    w = coords.camera_to_blender(joints_mm / 1000.0)
    return {name: w[i] for name, i in SMPL.items()}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def read_rgba(path: Path) -> np.ndarray:
    im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert im is not None and im.shape[2] == 4, path
    return cv2.cvtColor(im, cv2.COLOR_BGRA2RGBA)


# --- presets ------------------------------------------------------------------------------------

def test_presets_resolve_on_rigify_and_mixamo_names() -> None:
    rigify_generated = ([f"{p}{n}" for p in ("ORG-", "DEF-") for n in RIGIFY_NAMES.values()]
                        + ["DEF-upper_arm.L.001", "MCH-spine", "root", "torso"])
    rigify_def_only = [f"DEF-{n}" for n in RIGIFY_NAMES.values()]
    metarig = list(RIGIFY_NAMES.values())
    for names, prefix in ((rigify_generated, "ORG-"), (rigify_def_only, "DEF-"), (metarig, "")):
        assert scail_rig.detect_preset(names) == "RIGIFY"
        table = scail_rig.resolve_preset(names, "RIGIFY")
        assert set(table) == set(scail_rig.JOINTS)
        assert table["left_elbow"].bone == f"{prefix}forearm.L" and table["left_elbow"].at == 0.0
        assert table["neck"].bone == f"{prefix}spine.004" and table["head"].bone == f"{prefix}spine.006"
        assert table["right_ankle"].bone == f"{prefix}foot.R"
    for prefix in ("mixamorig:", "mixamorig1:", ""):
        names = [prefix + n for n in MIXAMO_NAMES.values()] + [prefix + "HeadTop_End"]
        assert scail_rig.detect_preset(names) == "MIXAMO"
        table = scail_rig.resolve_preset(names, "MIXAMO")
        assert set(table) == set(scail_rig.JOINTS)
        assert table["right_wrist"].bone == f"{prefix}RightHand"
        assert table["left_hip"].bone == f"{prefix}LeftUpLeg"
    skeleton = importlib.import_module("humanpose3d.scene.skeleton")
    ours = scail_rig.resolve_preset(skeleton.BONE_NAMES, "HP3D")
    assert scail_rig.detect_preset(skeleton.BONE_NAMES) == "HP3D" and set(ours) == set(scail_rig.JOINTS)
    # A rig missing the legs keeps the arms and says which joints it lacks.
    partial = [n for n in metarig if not n.startswith(("thigh", "shin", "foot"))]
    assert set(scail_rig.resolve_preset(partial, "RIGIFY")) == set(scail_rig.JOINTS) - {
        f"{s}_{j}" for s in ("left", "right") for j in ("hip", "knee", "ankle")}


# --- a hand-keyed armature ----------------------------------------------------------------------

def test_rig_follows_a_hand_keyed_armature() -> None:
    """Keys on one bone of a Rigify-named (DEF-) armature: the forearm cylinder and the wrist
    sphere follow it in the SCAIL scene, frame by frame."""
    scene = _empty_scene()
    arm = _armature(_humanoid(_names("DEF-", RIGIFY_NAMES), _world(standing_pose_mm())))
    mapping = scail_rig.resolve_preset([b.name for b in arm.data.bones], "RIGIFY")
    scene.frame_start, scene.frame_end = 1, 10
    st = scail_render.setup(scene, arm, mapping, size=SIZE, camera="FOV")
    assert len(st.rig.limbs) == 13 and not st.rig.missing
    pb = arm.pose.bones["DEF-upper_arm.L"]
    pb.rotation_mode = "XYZ"
    pb.rotation_euler = (0.0, 0.0, 0.0)
    pb.keyframe_insert("rotation_euler", frame=1)
    pb.rotation_euler = (0.0, 0.0, math.radians(70))
    pb.keyframe_insert("rotation_euler", frame=10)
    forearm = ("left_elbow", "left_wrist")
    cylinder, _, wrist_sphere = next(p for i, p in st.rig.limbs if engine_render.LIMBS[i][:2] == forearm)
    seen = {}
    for frame in (1, 10):
        st.scene.frame_set(frame)
        dg = st.scene.view_layers[0].depsgraph
        scene.frame_set(frame)  # the armature's own scene: where the bones are, independently
        elbow = arm.matrix_world @ arm.pose.bones["DEF-forearm.L"].head
        wrist = arm.matrix_world @ arm.pose.bones["DEF-forearm.L"].tail
        m = cylinder.evaluated_get(dg).matrix_world
        # The cylinder sits on the elbow and its Y axis reaches the wrist (unit mesh, scaled).
        assert (m.translation - elbow).length < 1e-5
        assert (m.col[1].to_3d() - (wrist - elbow)).length < 1e-5
        assert abs(m.col[0].to_3d().length - 1) < 1e-5 and abs(m.col[2].to_3d().length - 1) < 1e-5
        assert (wrist_sphere.evaluated_get(dg).matrix_world.translation - wrist).length < 1e-5
        seen[frame] = np.array(m.translation)
    assert np.linalg.norm(seen[10] - seen[1]) > 0.1  # the key moved it


# --- against the engine -------------------------------------------------------------------------



@pytest.fixture(scope="module")
def engine_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The engine with --scail on cam01 frames 0:10 at a small SCAIL size: its own cylinder
    render is the reference for Blender's."""
    config = importlib.import_module("humanpose3d.engine.config")
    pipeline = importlib.import_module("humanpose3d.engine.pipeline")
    out = tmp_path_factory.mktemp("scail_blender")
    cfg = config.RunConfig(video=demo_video(), height_m=1.72, out_dir=out, frames=FRAMES, scail=True,
                           scail_size=SIZE, joint_angles=False, angle_plots=False)
    result = pipeline.run(cfg)
    return SimpleNamespace(folder=result.out_dir, stem=cfg.video.stem, record=result.record)


@pytest.fixture(scope="module")
def hp3d_setup(engine_run) -> SimpleNamespace:
    scene = _empty_scene()
    built = build.build_scene(build.load_result(engine_run.folder), scene)
    arm = built["armature"]
    mapping = scail_rig.resolve_preset([b.name for b in arm.data.bones], "HP3D")
    st = scail_render.setup(scene, arm, mapping, size=SIZE)  # AUTO: the result's camera
    return SimpleNamespace(scene=scene, armature=arm, setup=st, frames=built["frames"])


def test_hp3d_preset_puts_the_joints_where_the_engine_puts_smpl(engine_run, hp3d_setup) -> None:
    with np.load(engine_run.folder / f"{engine_run.stem}_markers.npz") as d:
        markers = np.asarray(d["markers_33_camera"], float)
    # In the scene's levelled world (engine/world_frame.py), where build_scene puts the armature.
    W = world_frame.world_from_camera(engine_run.record, markers)
    smpl = world_frame.transform_points(W, smpl24.mediapipe_to_smpl24(markers))
    st = hp3d_setup.setup
    start = hp3d_setup.frames[0]
    errors: dict[str, list[float]] = {}
    for t in (0, 4, 9):
        st.scene.frame_set(start + t)
        got = scail_rig.joint_positions(st.rig, st.scene.view_layers[0].depsgraph)
        for j in scail_rig.JOINTS:
            errors.setdefault(j, []).append(float(np.linalg.norm(np.array(got[j]) - smpl[t, SMPL[j]])))
    worst = {j: 1000 * max(e) for j, e in errors.items()}
    print("rig joints vs engine SMPL joints, max mm:", {j: round(v, 3) for j, v in worst.items()})
    # The head rides on the neck bone, whose length the armature holds fixed while the engine's
    # shoulder-to-ear distance varies by a few millimetres; every other joint is exact.
    assert worst.pop("head") < 5.0
    assert max(worst.values()) < 0.01


@pytest.mark.parametrize("engine", ["WORKBENCH", "CYCLES"])
def test_blender_mask_matches_the_engine_render(engine_run, hp3d_setup, tmp_path: Path, engine: str) -> None:
    """Every frame of the clip: the Blender render's alpha > 0.5 against the engine's SCAIL render
    of the same poses with the same camera (its scail/rgba PNGs)."""
    st = hp3d_setup.setup
    assert (st.intrinsics.width, st.intrinsics.height) == SIZE
    res = scail_render.render(st.scene, tmp_path, engine_run.stem, engine, mp4=(engine == "WORKBENCH"))
    assert res.frames == FRAMES[1] - FRAMES[0]
    ious = []
    for png in res.pngs:
        video_frame = int(png.stem.rsplit("_", 1)[1]) - 1  # Blender frame = video frame + 1
        ref = read_rgba(engine_run.folder / "scail" / "rgba"
                        / f"{engine_run.stem}_scail_{video_frame:06d}.png")
        got = read_rgba(png)
        assert set(np.unique(got[..., 3])) <= {0, 255}  # one ray per pixel: a hard mask
        ious.append(iou(got[..., 3] > 127, ref[..., 3] > 0))
    print(f"{engine}: mask IoU against the engine min {min(ious):.4f} median {np.median(ious):.4f}, "
          f"{res.seconds:.2f} s for {res.frames} frames at {SIZE[0]}x{SIZE[1]}")
    assert min(ious) >= 0.9
    if res.mp4 is not None:
        cap = cv2.VideoCapture(str(res.mp4))
        n, (w, h) = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), (cap.get(cv2.CAP_PROP_FRAME_WIDTH),
                                                             cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        ok, first = cap.read()
        cap.release()
        assert ok and n == res.frames and (w, h) == SIZE
        assert first.max() > 100 and first[0, 0].max() < 16  # the body on black


@pytest.mark.parametrize("engine", ["WORKBENCH", "CYCLES"])
def test_synthetic_pose_on_a_mixamo_rig_matches_the_engine(tmp_path: Path, engine: str) -> None:
    """One SMPL-24 pose on a Mixamo-named armature, the SCAIL camera following a scene camera at
    the engine's origin with FOV 55°: masks agree, and Cycles reproduces SCAIL's shading."""
    scene = _empty_scene()
    joints = standing_pose_mm()
    arm = _armature(_humanoid(_names("mixamorig:", MIXAMO_NAMES), _world(joints)))
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.collection.objects.link(cam)
    scene.camera = cam
    scene.frame_start = scene.frame_end = 1
    mapping = scail_rig.resolve_preset([b.name for b in arm.data.bones], "MIXAMO")
    st = scail_render.setup(scene, arm, mapping, size=SIZE, camera="AUTO", fov_deg=55.0)
    k = engine_render.Intrinsics.from_settings(*SIZE, 55.0)
    assert st.intrinsics == k
    ref = engine_render.CylinderRenderer(k, engine_render.depth_range(joints)).render(joints)
    assert st.depth == pytest.approx(tuple(v / 1000 for v in engine_render.depth_range(joints)), abs=1e-5)
    got = read_rgba(scail_render.render(st.scene, tmp_path, "pose", engine, mp4=False).pngs[0])
    a, b = got[..., 3] > 127, ref[..., 3] > 0
    both = a & b
    diff = np.abs(got[..., :3].astype(int) - ref[..., :3].astype(int))[both]
    print(f"{engine}: IoU {iou(a, b):.4f}; colour |diff| mean {diff.mean():.2f}, "
          f"median {np.median(diff):.0f} (0-255)")
    assert iou(a, b) >= 0.9
    # Cycles shades per pixel as SCAIL does; Workbench's matcap shades from the view ray, not the
    # camera axis, and fades per limb: close, not equal.
    assert np.median(diff) <= (1 if engine == "CYCLES" else 12)


# --- operator, panel, headless ------------------------------------------------------------------

def test_operator_renders_with_the_panel_settings(engine_run, tmp_path: Path) -> None:
    scene = _empty_scene()
    pkg.register()
    try:
        built = build.build_scene(build.load_result(engine_run.folder), scene)
        scene.frame_end = scene.frame_start + 2
        props = scene.hp3d_scail
        props.armature = built["armature"]  # detects the preset and fills the joints
        assert props.preset == "HP3D" and len(props.joints) == len(scail_rig.JOINTS)
        hip = next(it for it in props.joints if it.joint == "left_hip")
        assert (hip.bone, hip.toward) == ("thigh.L", "pelvis")
        assert hip.blend == pytest.approx(1 - smpl24.HIP_OUT)
        props.width, props.height = SIZE
        props.engine = "AUTO"  # times one frame with each engine
        props.output_dir = str(tmp_path)
        assert bpy.ops.humanpose3d.scail_render() == {"FINISHED"}
        assert scail_render._PICKED[SIZE] in ("WORKBENCH", "CYCLES")
        pngs = sorted((tmp_path / "rgba").glob(f"{engine_run.stem}_scail_*.png"))
        assert len(pngs) == 3 and (tmp_path / f"{engine_run.stem}_scail.mp4").is_file()
        assert "3 frames" in props.status
        # An override: the head on the neck bone's tail instead of SMPL's head joint.
        head = next(it for it in props.joints if it.joint == "head")
        head.at = 1.0
        assert bpy.ops.humanpose3d.scail_build() == {"FINISHED"}
        rig_scene = bpy.data.scenes[scail_render.SCENE_NAME]
        rig_scene.frame_set(scene.frame_start)
        head_obj = bpy.data.objects[f"SCAIL {built['armature'].name} head"]
        scene.frame_set(scene.frame_start)
        tail = built["armature"].matrix_world @ built["armature"].pose.bones["neck"].tail
        assert (head_obj.evaluated_get(rig_scene.view_layers[0].depsgraph).matrix_world.translation
                - tail).length < 1e-5
        _draw_panel()
    finally:
        pkg.unregister()


def test_unsaved_file_renders_keep_the_typed_folder_name() -> None:
    """As the main panel's Output: a blend-relative SCAIL folder in an unsaved file goes to the
    user folder (the temporary one outside bl_ext.*) under its own name, then the armature's."""
    _empty_scene()
    assert not bpy.data.filepath
    setup = importlib.import_module("humanpose3d.operators.scail_setup")
    rig, tmp = SimpleNamespace(name="My Rig"), Path(tempfile.gettempdir())
    assert setup.output_folder(SimpleNamespace(output_dir="//renders/"), rig) == tmp / "renders" / "My_Rig"
    assert setup.output_folder(SimpleNamespace(output_dir=" "), rig) == tmp / "scail" / "My_Rig"
    assert setup.output_folder(SimpleNamespace(output_dir="/abs/out"), rig) == Path("/abs/out")


def _draw_panel() -> None:
    """The sub-panel's draw with a recording layout: every property and operator it names exists."""
    calls = drawn(bpy.types.HP3D_PT_scail, bpy.context)
    assert_drawn_names_exist(calls, bpy.ops)
    assert {"humanpose3d.scail_build", "humanpose3d.scail_render"} <= {c[1][0] for c in calls
                                                                        if c[0] == "operator"}


def test_headless_scail_blender_renders_a_result(engine_run) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "headless.py"), "--", "--import-result",
                          str(engine_run.folder), "--scail-blender", "--scail-engine", "workbench"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "scail rig: 13 limbs" in out.stdout and f"camera {SIZE[0]}x{SIZE[1]}" in out.stdout
    folder = engine_run.folder / "scail_blender"
    assert len(list((folder / "rgba").glob("*.png"))) == FRAMES[1] - FRAMES[0]
    assert (folder / f"{engine_run.stem}_scail.mp4").stat().st_size > 0
