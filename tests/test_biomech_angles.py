"""ISB joint angles recovered from synthetic markers built from known joint angles, including near
gimbal lock and through ±90° on the floating axis; and the levelling of tilted markers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from engine.isb_angles import (
    ALL_GROUPS,
    GROUPS,
    columns,
    continuous_euler,
    humerothoracic,
    joint_angles,
    signs,
)
from engine.levelling import estimate_up, level_rotation
from engine.segments import heading_frame

TOL_DEG = 0.5


def _euler(raw_deg: np.ndarray) -> np.ndarray:
    return Rotation.from_euler("ZXY", raw_deg, degrees=True).as_matrix()


def _place(origin: np.ndarray, rot: np.ndarray, local: tuple[float, float, float]) -> np.ndarray:
    return origin + rot @ np.asarray(local, float)


def synthetic_markers(angles: dict[str, np.ndarray], lab: np.ndarray, pelvis_origin: np.ndarray
                      ) -> dict[str, np.ndarray]:
    """Markers (T, 3) by FINAL_65 name whose segment frames are exactly those implied by `angles`
    ({group: (T, 3) flex/abd/rot degrees, the elbow's abd/rot being its carrying angle and
    pronation}) in the convention of engine.isb_angles."""
    T = pelvis_origin.shape[0]
    raw = {g: angles[g] * signs(g) for g in GROUPS}
    m: dict[str, list[np.ndarray]] = {}

    def put(name: str, value: np.ndarray) -> None:
        m.setdefault(name, []).append(value)

    for t in range(T):
        rp = lab @ _euler(raw["pelvis"][t])
        o = pelvis_origin[t]
        put("r.ASIS_study", _place(o, rp, (0.05, 0.0, 0.12)))
        put("L.ASIS_study", _place(o, rp, (0.05, 0.0, -0.12)))
        put("r.PSIS_study", _place(o, rp, (-0.12, 0.0, 0.04)))
        put("L.PSIS_study", _place(o, rp, (-0.12, 0.0, -0.04)))
        mid_hjc = _place(o, rp, (0.0, -0.08, 0.0))
        rt = rp @ _euler(raw["trunk"][t])
        put("r_shoulder_study", _place(mid_hjc, rt, (0.0, 0.5, 0.18)))
        put("L_shoulder_study", _place(mid_hjc, rt, (0.0, 0.5, -0.18)))
        for s, sign in (("r", 1.0), ("l", -1.0)):
            p = "r" if s == "r" else "L"
            hjc = _place(o, rp, (0.0, -0.08, 0.09 * sign))
            put("RHJC_study" if s == "r" else "LHJC_study", hjc)
            thigh = rp @ _euler(raw[f"hip_{s}"][t])
            knee = _place(hjc, thigh, (0.0, -0.42, 0.0))
            put(f"{p}_knee_study", _place(knee, thigh, (0.0, 0.0, 0.05 * sign)))  # lateral
            put(f"{p}_mknee_study", _place(knee, thigh, (0.0, 0.0, -0.05 * sign)))
            shank = thigh @ _euler(raw[f"knee_{s}"][t])
            ankle = _place(knee, shank, (0.0, -0.4, 0.0))
            put(f"{p}_ankle_study", _place(ankle, shank, (0.0, 0.0, 0.035 * sign)))
            put(f"{p}_mankle_study", _place(ankle, shank, (0.0, 0.0, -0.035 * sign)))
            foot = shank @ _euler(raw[f"ankle_{s}"][t])
            put(f"{p}_calc_study", _place(ankle, foot, (-0.05, -0.05, 0.0)))
            put(f"{p}_toe_study", _place(ankle, foot, (0.16, -0.05, 0.0)))
            put(f"{p}_5meta_study", _place(ankle, foot, (0.1, -0.05, 0.04 * sign)))
            gh = _place(mid_hjc, rt, (0.0, 0.47, 0.17 * sign))
            put("RShoulder" if s == "r" else "LShoulder", gh)
            arm = rt @ _euler(raw[f"shoulder_{s}"][t])
            elbow = _place(gh, arm, (0.0, -0.3, 0.0))
            put(f"{p}_lelbow_study", _place(elbow, arm, (0.0, 0.0, 0.03 * sign)))
            put(f"{p}_melbow_study", _place(elbow, arm, (0.0, 0.0, -0.03 * sign)))
            fore = arm @ _euler(raw[f"elbow_{s}"][t])
            wrist = _place(elbow, fore, (0.0, -0.25, 0.0))
            put(f"{p}_lwrist_study", _place(wrist, fore, (0.0, 0.0, 0.025 * sign)))
            put(f"{p}_mwrist_study", _place(wrist, fore, (0.0, 0.0, -0.025 * sign)))
    return {k: np.array(v) for k, v in m.items()}


def _random_motion(rng: np.random.Generator, T: int) -> dict[str, np.ndarray]:
    """Smooth, physiological-range motion of every group."""
    t = np.linspace(0, 2 * np.pi, T)[:, None]
    amp = {"pelvis": (15, 10, 25), "hip": (50, 20, 25), "knee": (60, 8, 15), "ankle": (25, 15, 15),
           "trunk": (35, 20, 30), "shoulder": (70, 40, 40), "elbow": (60, 10, 60)}
    out = {}
    for g in GROUPS:
        a = np.array(amp[g.partition("_")[0]], float)
        phase = rng.uniform(0, 2 * np.pi, 3)
        out[g] = a * np.sin(t + phase) * rng.uniform(0.5, 1.0, 3) + rng.uniform(-10, 10, 3)
    out["knee_r"][:, 0] = 60 + 55 * np.sin(t[:, 0])  # 5–115° flexion, as in gait and squats
    return out


def _check(angles_in: dict[str, np.ndarray], got: dict[str, dict[str, np.ndarray]]) -> float:
    worst = 0.0
    for g in GROUPS:
        for k, col in enumerate(columns(g)):
            err = np.abs(got[g][col] - angles_in[g][:, k])
            assert np.all(np.isfinite(err)), (g, col)
            worst = max(worst, float(err.max()))
            assert err.max() <= TOL_DEG, f"{col}: max error {err.max():.3g}°"
    return worst


LAB = Rotation.from_euler("Y", 37, degrees=True).as_matrix()  # the subject faces 37° off lab X


def test_all_groups_recovered_from_known_angles() -> None:
    rng = np.random.default_rng(3)
    T = 80
    angles = _random_motion(rng, T)
    origin = np.column_stack([np.linspace(0, 2, T), np.full(T, 0.95), np.linspace(0, -1, T)])
    got = joint_angles(synthetic_markers(angles, LAB, origin), lab=LAB)
    assert set(got) == set(ALL_GROUPS)
    assert list(got["elbow_r"]) == ["elbow_r_flex_deg"]
    assert list(got["hip_l"]) == ["hip_l_flex_deg", "hip_l_abd_deg", "hip_l_rot_deg"]
    assert _check(angles, got) < 1e-6


def test_near_gimbal_lock_and_through_90_on_the_floating_axis() -> None:
    T = 61
    angles = {g: np.zeros((T, 3)) for g in GROUPS}
    # Hip abducted to within 0.2° of the Z-X-Y singularity while it flexes and rotates.
    angles["hip_r"][:] = np.column_stack([np.linspace(-20, 40, T), np.full(T, 89.8), np.linspace(-30, 30, T)])
    angles["hip_l"][:] = np.column_stack([np.linspace(10, 30, T), np.full(T, -89.6), np.full(T, 12.0)])
    # Arm raised sideways from 0 to 150°, passing the singularity (ISB's X = 90°).
    angles["shoulder_r"][:] = np.column_stack([np.full(T, 20.0), np.linspace(0, 150, T), np.full(T, -15.0)])
    angles["shoulder_l"][:] = np.column_stack([np.full(T, 5.0), np.linspace(0, 120, T), np.full(T, 25.0)])
    angles["trunk"][:, 0] = np.linspace(0, 89.5, T)  # flexion is a Z angle: nothing singular
    origin = np.tile([0.0, 0.95, 0.0], (T, 1))
    got = joint_angles(synthetic_markers(angles, LAB, origin), lab=LAB)
    for g in ("hip_r", "hip_l", "trunk"):
        for k, col in enumerate(columns(g)):
            assert np.abs(got[g][col] - angles[g][:, k]).max() <= TOL_DEG, col
    for g in ("shoulder_r", "shoulder_l"):
        abd = got[g][f"{g}_abd_deg"]
        # Exactly at 90° flexion and rotation are not separable; everywhere else all three are.
        away = np.abs(angles[g][:, 1] - 90) > 1.0
        for k, col in enumerate(columns(g)):
            assert np.abs(got[g][col] - angles[g][:, k])[away].max() <= TOL_DEG, col
        assert np.abs(np.diff(abd)).max() < 5, "abduction must pass 90° without a jump"


def test_continuous_euler_has_no_180_jumps() -> None:
    T = 200
    raw = np.column_stack([np.linspace(100, 300, T), np.linspace(-40, 40, T), np.linspace(-250, 250, T)])
    got = continuous_euler(_euler(raw))
    assert np.abs(np.diff(got, axis=0)).max() < 5
    # Same rotations as the input, and equal to it up to one whole turn per column.
    np.testing.assert_allclose(_euler(got), _euler(raw), atol=1e-9)
    d = (got - raw) / 360.0
    np.testing.assert_allclose(d - d[0], 0, atol=1e-6)


def test_nan_frames_stay_nan_and_continuity_bridges_them() -> None:
    T = 30
    raw = np.column_stack([np.linspace(150, 210, T), np.zeros(T), np.zeros(T)])
    rot = _euler(raw)
    rot[10:13] = np.nan
    got = continuous_euler(rot)
    assert np.isnan(got[10:13]).all()
    ok = np.isfinite(got[:, 0])
    np.testing.assert_allclose(got[ok, 0], raw[ok, 0], atol=1e-9)


def test_heading_frame_follows_the_pelvis() -> None:
    T = 40
    yaw = 60.0
    pel = np.array([Rotation.from_euler("YZ", [yaw, tilt], degrees=True).as_matrix()
                    for tilt in np.linspace(-20, 20, T)])
    lab = heading_frame(pel)
    np.testing.assert_allclose(lab, Rotation.from_euler("Y", yaw, degrees=True).as_matrix(), atol=1e-9)


def test_levelling_undoes_a_camera_pitch() -> None:
    from engine.joint_sets import POSE2SIM_22

    rng = np.random.default_rng(0)
    T = 50
    i = {n: k for k, n in enumerate(POSE2SIM_22)}
    m = np.zeros((T, 22, 3))
    # Upright legs, with the left foot lifted forward in half of the frames (balancing).
    m[:, i["RHip"]] = [0.1, 0.9, 0.0]
    m[:, i["LHip"]] = [-0.1, 0.9, 0.0]
    m[:, i["RAnkle"]] = [0.1, 0.08, 0.0]
    m[:, i["LAnkle"]] = [-0.1, 0.08, 0.0]
    m[::2, i["LAnkle"]] = [-0.1, 0.35, 0.35]
    m += rng.normal(0, 0.005, m.shape)
    pitch = Rotation.from_euler("X", 25, degrees=True).as_matrix()
    up = estimate_up(m @ pitch.T)
    assert np.degrees(np.arccos(up @ pitch[:, 1])) < 2.0
    np.testing.assert_allclose(level_rotation(up) @ up, [0, 1, 0], atol=1e-9)


@pytest.mark.parametrize("group", GROUPS)
def test_left_and_right_signs_mirror(group: str) -> None:
    s = signs(group)
    joint, _, side = group.partition("_")
    if side == "l":
        np.testing.assert_array_equal(s[1:], -signs(f"{joint}_r")[1:])
        assert s[0] == signs(f"{joint}_r")[0]


_LEG = ("knee_study", "mknee_study", "ankle_study", "mankle_study", "calc_study", "toe_study", "5meta_study")
_SHANK_FOOT = _LEG[2:]
_FOOT = _LEG[4:]
_ARM = ("lelbow_study", "melbow_study", "lwrist_study", "mwrist_study")
_FOREARM = _ARM[2:]


def _mid(m: dict, a: str, b: str) -> np.ndarray:
    return 0.5 * (m[a] + m[b])


# (group, column suffix, markers moved, pivot, rotation axis in the lab, degrees about it, expected
# value). Lab: X forward, Y up, Z right. Each case is a movement described anatomically, e.g.
# "the right knee swings forward", so the signs are checked against anatomy, not against the table.
_CASES = [
    ("hip_r", "flex", [f"r_{n}" for n in _LEG], lambda m: m["RHJC_study"], "Z", 20, 20),  # knee forward
    ("hip_r", "abd", [f"r_{n}" for n in _LEG], lambda m: m["RHJC_study"], "X", -20, 20),  # knee rightwards
    ("hip_l", "abd", [f"L_{n}" for n in _LEG], lambda m: m["LHJC_study"], "X", 20, 20),  # knee leftwards
    ("hip_r", "rot", [f"r_{n}" for n in _LEG], lambda m: m["RHJC_study"], "Y", 20, 20),  # toes to the left
    ("hip_l", "rot", [f"L_{n}" for n in _LEG], lambda m: m["LHJC_study"], "Y", -20, 20),  # toes to the right
    ("knee_r", "flex", [f"r_{n}" for n in _SHANK_FOOT], lambda m: _mid(m, "r_knee_study", "r_mknee_study"),
     "Z", -30, 30),  # ankle backwards
    ("knee_l", "flex", [f"L_{n}" for n in _SHANK_FOOT], lambda m: _mid(m, "L_knee_study", "L_mknee_study"),
     "Z", -30, 30),
    ("ankle_r", "flex", [f"r_{n}" for n in _FOOT], lambda m: _mid(m, "r_ankle_study", "r_mankle_study"),
     "Z", 15, 15),  # toes up: dorsiflexion
    ("ankle_r", "abd", [f"r_{n}" for n in _FOOT], lambda m: _mid(m, "r_ankle_study", "r_mankle_study"),
     "X", -15, 15),  # sole turned outwards: eversion
    ("ankle_l", "abd", [f"L_{n}" for n in _FOOT], lambda m: _mid(m, "L_ankle_study", "L_mankle_study"),
     "X", 15, 15),
    ("shoulder_r", "flex", [f"r_{n}" for n in _ARM], lambda m: m["RShoulder"], "Z", 30, 30),  # elbow forward
    ("shoulder_r", "abd", [f"r_{n}" for n in _ARM], lambda m: m["RShoulder"], "X", -30, 30),  # elbow out
    ("shoulder_l", "abd", [f"L_{n}" for n in _ARM], lambda m: m["LShoulder"], "X", 30, 30),
    ("elbow_r", "flex", [f"r_{n}" for n in _FOREARM], lambda m: _mid(m, "r_lelbow_study", "r_melbow_study"),
     "Z", 40, 40),  # wrist forward
    ("elbow_l", "flex", [f"L_{n}" for n in _FOREARM], lambda m: _mid(m, "L_lelbow_study", "L_melbow_study"),
     "Z", 40, 40),
    ("trunk", "flex", ["r_shoulder_study", "L_shoulder_study", "RShoulder", "LShoulder",
                       *[f"r_{n}" for n in _ARM], *[f"L_{n}" for n in _ARM]],
     lambda m: _mid(m, "RHJC_study", "LHJC_study"), "Z", -20, 20),  # shoulders forward
]


@pytest.mark.parametrize("case", _CASES, ids=[f"{c[0]}_{c[1]}" for c in _CASES])
def test_signs_follow_anatomy(case: tuple) -> None:
    group, comp, moved, pivot, axis, deg, expected = case
    zeros = {g: np.zeros((1, 3)) for g in GROUPS}
    m = synthetic_markers(zeros, np.eye(3), np.array([[0.0, 0.95, 0.0]]))
    p = pivot(m)
    rot = Rotation.from_euler(axis, deg, degrees=True).as_matrix()
    for name in moved:
        m[name] = p + (m[name] - p) @ rot.T
    got = joint_angles(m, lab=np.eye(3))
    assert got[group][f"{group}_{comp}_deg"][0] == pytest.approx(expected, abs=TOL_DEG)


def test_pelvis_anterior_tilt_is_positive() -> None:
    zeros = {g: np.zeros((1, 3)) for g in GROUPS}
    m = synthetic_markers(zeros, np.eye(3), np.array([[0.0, 0.95, 0.0]]))
    p = m["r.ASIS_study"].copy()
    rot = Rotation.from_euler("Z", -10, degrees=True).as_matrix()  # top of the pelvis forward
    m = {k: p + (v - p) @ rot.T for k, v in m.items()}
    got = joint_angles(m, lab=np.eye(3))
    assert got["pelvis"]["pelvis_flex_deg"][0] == pytest.approx(10, abs=TOL_DEG)
    assert got["hip_r"]["hip_r_flex_deg"][0] == pytest.approx(0, abs=TOL_DEG)


# --- ISB's humerothoracic Y-X-Y angles ------------------------------------------------------------

def _elbow_direction(plane_deg: np.ndarray, elev_deg: np.ndarray, side: str) -> np.ndarray:
    """Where the humerus points (shoulder → elbow) in the thorax (X anterior, Y up, Z right) for a
    plane of elevation (0: frontal plane, 90: forward) and an elevation (0: arm down)."""
    p, e = np.radians(plane_deg), np.radians(elev_deg)
    lateral = 1.0 if side == "r" else -1.0
    return np.stack([np.sin(e) * np.sin(p), -np.cos(e), lateral * np.sin(e) * np.cos(p)], axis=-1)


@pytest.mark.parametrize("side", ["r", "l"])
def test_humerothoracic_plane_and_elevation_mean_what_isb_says(side):
    rel = Rotation.random(400, random_state=3).as_matrix()
    ang = humerothoracic(rel, side)
    ok = (ang[:, 1] > 20) & (ang[:, 1] < 160)
    assert ok.sum() > 200
    np.testing.assert_allclose(-rel[ok][:, :, 1], _elbow_direction(ang[ok, 0], ang[ok, 1], side), atol=1e-6)


@pytest.mark.parametrize("side,raw_abd,raw_rot", [("r", -90.0, 30.0), ("l", 90.0, -30.0)])
def test_humerothoracic_internal_rotation_is_positive(side, raw_abd, raw_rot):
    """Arm abducted 90° in the frontal plane, turned about its long axis so that a forearm flexed
    forward would point down: internal rotation, +30°."""
    rel = Rotation.from_euler("XY", [raw_abd, raw_rot], degrees=True).as_matrix()[None]
    assert rel[0, 1, 0] < -0.4  # the humerus's anterior axis now points down
    plane, elev, rot = humerothoracic(rel, side)[0]
    assert plane == pytest.approx(0.0, abs=1e-6) and elev == pytest.approx(90.0)
    assert rot == pytest.approx(30.0)


@pytest.mark.parametrize("side", ["r", "l"])
def test_humerothoracic_hanging_arm_follows_the_stated_rule_and_stays_exact(side):
    """The arm swings forward from hanging and back, turning about its long axis all the while:
    where elevation is under 20° the plane of elevation is interpolated between its defined
    neighbours (held at the ends) and rotation keeps the measured twist (plane + rotation); the
    three angles give the humerus exactly where the plane is defined, within the elevation angle
    where it is not; nothing jumps between frames."""
    T = 240
    t = np.linspace(0, 1, T)
    elev = 60 * np.sin(np.pi * t) ** 2 + 2  # 2° .. 62° .. 2°
    plane = 70 + 20 * t  # forward, drifting outward
    rot = 25 * np.sin(4 * np.pi * t)
    alpha = np.radians(plane + 180.0) if side == "r" else np.radians(-plane)
    gamma = np.radians(rot + 180.0) if side == "r" else np.radians(-rot)
    rel = Rotation.from_euler("YXY", np.column_stack([alpha, np.radians(elev), gamma])).as_matrix()
    ang = humerothoracic(rel, side)
    np.testing.assert_allclose(ang[:, 1], elev, atol=1e-6)
    defined = elev >= 20
    np.testing.assert_allclose(ang[defined, 0], plane[defined], atol=1e-6)
    np.testing.assert_allclose(ang[defined, 2], rot[defined], atol=1e-6)
    first, last = np.flatnonzero(defined)[[0, -1]]
    assert np.allclose(ang[:first, 0], plane[first]) and np.allclose(ang[last + 1:, 0], plane[last])
    back = Rotation.from_euler("YXY", np.column_stack([
        np.radians(ang[:, 0] + 180.0) if side == "r" else np.radians(-ang[:, 0]),
        np.radians(ang[:, 1]), np.radians(ang[:, 2] + 180.0) if side == "r" else np.radians(-ang[:, 2])
    ])).as_matrix()
    np.testing.assert_allclose(back[defined], rel[defined], atol=1e-9)
    np.testing.assert_allclose((ang[:, 0] + ang[:, 2])[~defined], (plane + rot)[~defined], atol=1e-6)
    off = np.degrees(Rotation.from_matrix(np.einsum("tji,tjk->tik", back, rel)).magnitude())
    assert (off[~defined] <= elev[~defined] + 1e-6).all()
    assert np.abs(np.diff(ang, axis=0)).max() < 5.0


def test_joint_angles_include_the_humerothoracic_groups():
    rng = np.random.default_rng(1)
    T = 50
    motion = _random_motion(rng, T)
    markers = synthetic_markers(motion, np.eye(3), np.zeros((T, 3)) + [0.0, 1.0, 3.0])
    out = joint_angles(markers, lab=np.eye(3))
    assert set(out) == set(ALL_GROUPS)
    for side in ("r", "l"):
        ht = out[f"humerothoracic_{side}"]
        assert list(ht) == columns(f"humerothoracic_{side}")
        # The same humerus as the Z-X-Y shoulder: elevation is the angle between humerus and trunk.
        z = np.radians(np.column_stack([out[f"shoulder_{side}"][c] for c in columns(f"shoulder_{side}")]))
        zxy = Rotation.from_euler("ZXY", z * signs(f"shoulder_{side}")).as_matrix()
        np.testing.assert_allclose(ht[f"humerothoracic_{side}_elev_deg"],
                                   np.degrees(np.arccos(np.clip(zxy[:, 1, 1], -1, 1))), atol=1e-6)


def test_uncertain_landmarks_shade_their_joints_and_side():
    """A span where the quality report has the left ankle uncertain shades the left ankle and knee
    plots there, and nothing on the right or at the hip."""
    from matplotlib.figure import Figure

    from engine.angle_plots import _draw_joint, _spans
    from engine.biomech import uncertain_by_joint
    from engine.joint_sets import MP

    T = 60
    mask = np.zeros((T, 33), bool)
    mask[10:20, MP["left_ankle"]] = True
    shade = uncertain_by_joint(mask)
    assert shade["ankle"]["l"][10:20].all() and shade["knee"]["l"].sum() == 10
    assert not shade["ankle"]["r"].any() and not shade["hip"]["l"].any()
    time_s = np.arange(T) / 60.0
    assert _spans(shade["knee"]["l"], time_s) == [pytest.approx((9.5 / 60, 19.5 / 60))]
    rng = np.random.default_rng(0)
    angles = {g: {c: rng.normal(size=T) for c in columns(g)} for g in ("knee_r", "knee_l")}
    ax = Figure().subplots()
    _draw_joint([ax], "knee", time_s, angles, shade["knee"], comps=["flex"])
    assert len(ax.patches) == 1 and ax.get_xlabel() == "time (s)" and "(deg)" in ax.get_ylabel()
