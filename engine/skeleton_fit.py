"""Skeleton-constrained temporal reconstruction: fit the subject's fixed-length skeleton to the 2D
landmarks through the camera, with MediaPipe's 3D as a prior and smooth motion over time.

MediaPipe's 2D landmarks are far more accurate than its monocular 3D; its 3D mostly resolves
which way each bone points in depth. So per window of frames we solve one sparse nonlinear least
squares problem over all camera-space joint positions, with residuals (each divided by its
expected error so they are comparable):
  reprojection   (π(X_j) − u_j) · √visibility / σ_px        — where the joint was seen
  bone length    (|X_a − X_b| − L_ab) / σ_len                — the subject's own lengths
  3D prior       ((X_b − X_a) − R_t·s·(W_b − W_a)) / σ_prior  — MediaPipe's bone vectors, turned to
                                                               face the camera ray through the root
  smoothness     (X_{t+1} − 2X_t + X_{t−1}) / σ_acc           — bounded acceleration
  knee limit     max(0, h − sin θ_max) / σ_knee                — knees bend one way only
  stance         (X_t − X_{t−1}) / σ_stance                    — a planted heel or toe stays put
                                                               (contacts.stationary_feet)
where h = ((K−H) × (A−K))·ê_r / (|K−H||A−K|) is the knee's flexion sine about the pelvis' lateral
axis ê_r (left → right hip), negative when flexed, positive when bent backwards (hyperextended).
solved by damped Gauss–Newton with an analytic sparse Jacobian and a robust (soft-L1) loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solveh_banded
from scipy.sparse import coo_matrix, diags

from .camera import Intrinsics
from .joint_sets import MP, MP_MIRROR

# Joints fitted: the nose and the body without the hand points. Face landmarks follow the nose and
# the pinky/index/thumb points their wrist afterwards: MediaPipe Pose's hand points are too coarse
# to add evidence, and leaving them out makes every solve ~2.5× cheaper (cost grows as joints³).
FIT_JOINTS = np.array([MP["nose"], *range(11, 17), *range(23, 33)])
_RIDERS = {MP["nose"]: np.arange(1, 11),
           MP["left_wrist"]: np.array([MP[f"left_{n}"] for n in ("pinky", "index", "thumb")]),
           MP["right_wrist"]: np.array([MP[f"right_{n}"] for n in ("pinky", "index", "thumb")])}
_LOCAL = {int(j): i for i, j in enumerate(FIT_JOINTS)}


def _pairs(names: list[tuple[str, str]]) -> list[tuple[int, int]]:
    return [(MP[a], MP[b]) for a, b in names]


_LIMBS = [(f"{s}_{a}", f"{s}_{b}") for s in ("left", "right") for a, b in (
    ("shoulder", "elbow"), ("elbow", "wrist"),
    ("hip", "knee"), ("knee", "ankle"), ("ankle", "heel"), ("ankle", "foot_index"), ("heel", "foot_index"))]
_TORSO = [("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
          ("right_shoulder", "right_hip"), ("left_shoulder", "right_hip"), ("right_shoulder", "left_hip"),
          ("nose", "left_shoulder"), ("nose", "right_shoulder")]
FIT_BONES = np.array(_pairs(_LIMBS + _TORSO))


@dataclass
class FitWeights:
    sigma_px: float = 6.0  # 2D landmark error (px)
    sigma_len: float = 0.01  # bone length (m)
    sigma_prior: float = 0.08  # MediaPipe 3D bone vector (m)
    sigma_acc_60: float = 0.004  # per-frame second difference at 60 fps (m); scales with (60/fps)²
    sigma_knee: float = 0.05  # hyperextension beyond the limit, as a sine
    knee_hyperextension_deg: float = 10.0  # knees reach ~5° and hip rotation tilts the hinge; ≥ 90: off
    sigma_stance_60: float = 0.002  # a planted foot landmark's step per frame at 60 fps (m); ∝ 60/fps
    robust_scale: float = 5.0  # residuals beyond this many σ count linearly (soft-L1)
    max_iterations: int = 6
    window: int = 240  # frames per solve (memory and time stay bounded on long videos)
    overlap: int = 24


DEFAULT_WEIGHTS = FitWeights()


_CHUNK = 1024  # frames per block of per-frame solves (memory flat on long videos)


def _measured_lengths(init: np.ndarray, prior: np.ndarray, pixels: np.ndarray,
                      k: Intrinsics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lengths_from_2d's per-frame part: MediaPipe's bone lengths, how flat each bone lies in the
    image (|d_xy|) and the length measured along the viewing rays, each (T, B)."""
    a, b = FIT_BONES[:, 0], FIT_BONES[:, 1]

    def ray(px: np.ndarray) -> np.ndarray:
        return np.stack([(px[..., 0] - k.cx) / k.fx, (px[..., 1] - k.cy) / k.fy, np.ones(px.shape[:-1])], -1)

    norm = np.linalg.norm(prior, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = prior / norm[..., None]
    cos = np.linalg.norm(d[..., :2], axis=2)
    M = np.stack([ray(pixels[:, b]), -d], axis=-1)  # (T, B, 3, 2)
    rhs = init[:, a, 2, None] * ray(pixels[:, a])
    MtM = np.einsum("tbki,tbkj->tbij", M, M)
    Mtr = np.einsum("tbki,tbk->tbi", M, rhs)
    ok = np.isfinite(MtM).all(axis=(2, 3)) & np.isfinite(Mtr).all(axis=2)
    sol = np.full(Mtr.shape, np.nan)
    det = MtM[..., 0, 0] * MtM[..., 1, 1] - MtM[..., 0, 1] ** 2
    ok &= np.abs(det) > 1e-12
    sol[ok] = np.linalg.solve(MtM[ok], Mtr[ok][..., None])[..., 0]
    return norm, cos, sol[..., 1]


def lengths_from_2d(init: np.ndarray, prior: np.ndarray, pixels: np.ndarray, confident: np.ndarray,
                    k: Intrinsics, min_frames: int = 5) -> np.ndarray:
    """Subject's length for each FIT_BONES pair measured in the image, whatever MediaPipe thinks
    the body's proportions are. Per frame, with the bone's first end at its depth in `init` and
    MediaPipe's direction d for the bone, the second end's viewing ray fixes the length L:
    z_b·ray_b − z_a·ray_a = L·d (least squares in z_b, L). That is well conditioned only when the
    bone lies near the image plane, so the median is taken over such frames (|d_xy| ≥ 0.9, else
    ≥ 0.6). init: (T, 33, 3) camera positions; prior: (T, B, 3) MediaPipe bone vectors in the
    camera frame. Bones seen too rarely that way keep MediaPipe's length; mirrored pairs are
    averaged."""
    a, b = FIT_BONES[:, 0], FIT_BONES[:, 1]
    # Per frame, in blocks of frames: the (T, B, 3, 2) systems took 120 MB for 10 minutes.
    parts = [_measured_lengths(init[i:i + _CHUNK], prior[i:i + _CHUNK], pixels[i:i + _CHUNK], k)
             for i in range(0, len(init), _CHUNK)]
    norm, cos, measured = (np.concatenate(x) for x in zip(*parts))
    seen = confident[:, a] & confident[:, b] & np.isfinite(measured) & (measured > 0)
    lengths = np.nanmedian(np.where(np.isfinite(norm), norm, np.nan), axis=0)
    for i in range(len(FIT_BONES)):
        for thresh in (0.9, 0.6):
            sel = seen[:, i] & (cos[:, i] >= thresh)
            if sel.sum() >= min_frames:
                lengths[i] = np.median(measured[sel, i])
                break
    return _symmetric(lengths)


def _symmetric(lengths: np.ndarray) -> np.ndarray:
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(FIT_BONES)}
    out = lengths.copy()
    for i, (a, b) in enumerate(FIT_BONES):
        m = index.get((int(MP_MIRROR[a]), int(MP_MIRROR[b])))
        if m is None:
            m = index.get((int(MP_MIRROR[b]), int(MP_MIRROR[a])))
        if m is not None and np.isfinite(lengths[m]):
            out[i] = np.nanmean([lengths[i], lengths[m]])
    return out


def ray_rotations(root_px: np.ndarray, k: Intrinsics) -> np.ndarray:
    """(T, 3, 3) rotations taking the optical axis to the ray through each frame's root pixel.

    MediaPipe's world landmarks describe the body as seen along the ray to the person; a subject
    off the image centre is seen obliquely, so its 3D must be turned by the ray's angle."""
    ray = np.stack([(root_px[:, 0] - k.cx) / k.fx, (root_px[:, 1] - k.cy) / k.fy,
                    np.ones(len(root_px))], axis=1)
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, ray)
    s = np.linalg.norm(axis, axis=1)
    c = ray[:, 2]
    R = np.tile(np.eye(3), (len(ray), 1, 1))
    ok = s > 1e-9
    if ok.any():
        a = axis[ok] / s[ok, None]
        K = np.zeros((ok.sum(), 3, 3))
        K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -a[:, 2], a[:, 1], -a[:, 0]
        K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = a[:, 2], -a[:, 1], a[:, 0]
        R[ok] = np.eye(3) + s[ok, None, None] * K + (1 - c[ok])[:, None, None] * (K @ K)
    return R


_KNEE_CHAINS = np.array([[_LOCAL[MP[f"{s}_{n}"]] for n in ("hip", "knee", "ankle")]
                         for s in ("left", "right")])  # (side, hip/knee/ankle) local indices


def _knee_hinge(X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Knee flexion sine h (T, 2) of both legs (see the module doc) and its gradients with respect
    to hip, knee and ankle, each (T, 2, 3). The pelvis axis is held fixed in the gradient (a lagged
    linearisation: the step test uses the exact residual)."""
    hip, knee, ankle = (X[:, _KNEE_CHAINS[:, i]] for i in range(3))
    lat = X[:, _LOCAL[MP["right_hip"]]] - X[:, _LOCAL[MP["left_hip"]]]
    e = (lat / np.maximum(np.linalg.norm(lat, axis=-1, keepdims=True), 1e-9))[:, None]
    u, v = knee - hip, ankle - knee
    nu = np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-9)
    nv = np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
    h = (np.cross(u, v) * e).sum(-1, keepdims=True) / (nu * nv)
    du = np.cross(v, e) / (nu * nv) - h * u / nu**2  # (u×v)·e = u·(v×e) = v·(e×u)
    dv = np.cross(e, u) / (nu * nv) - h * v / nv**2
    return h[..., 0], [-du, du - dv, dv]


def fit_window(init: np.ndarray, pixels: np.ndarray, weights: np.ndarray, prior: np.ndarray,
               lengths: np.ndarray, k: Intrinsics, fps: float, w: FitWeights,
               stance: np.ndarray | None = None) -> np.ndarray:
    """Solve one window. init: (T, J, 3) camera-space start for FIT_JOINTS; pixels (T, J, 2);
    weights (T, J) reprojection weights (0 = unseen); prior (T, B, 3) MediaPipe bone vectors in
    the camera frame (NaN = none); lengths (B,); stance (T, J): joints held still from the
    previous frame (None: none). Returns (T, J, 3)."""
    T, J, _ = init.shape
    B = len(FIT_BONES)
    a_loc = np.array([_LOCAL[int(a)] for a, _ in FIT_BONES])
    b_loc = np.array([_LOCAL[int(b)] for _, b in FIT_BONES])
    sig_acc = w.sigma_acc_60 * (60.0 / fps) ** 2

    # Which residuals exist (fixed for the solve).
    seen = weights > 0
    t_seen, j_seen = np.nonzero(seen)
    sw = np.sqrt(weights[seen]) / w.sigma_px
    u_obs = pixels[seen]
    bl_t, bl_b = np.nonzero(np.broadcast_to(np.isfinite(lengths), (T, B)))
    pr_ok = np.isfinite(prior).all(axis=2)
    pr_t, pr_b = np.nonzero(pr_ok)
    pr_val = prior[pr_ok]
    n_proj, n_len, n_pr = 2 * len(t_seen), len(bl_t), 3 * len(pr_t)
    n_acc = 3 * J * max(T - 2, 0)
    pairs = np.zeros((T, J), bool)  # (t − 1, t) with the joint planted in both frames
    if stance is not None:
        pairs[1:] = stance[1:] & stance[:-1]
    st_t, st_j = np.nonzero(pairs)
    sig_st = w.sigma_stance_60 * 60.0 / fps
    n_st = 3 * len(st_t)
    n_lim = 2 * T
    n_res = n_proj + n_len + n_pr + n_acc + n_st + n_lim
    sin_max = np.sin(np.radians(w.knee_hyperextension_deg))

    def var(t: np.ndarray, j: np.ndarray) -> np.ndarray:
        return (t * J + j) * 3

    def residuals(x: np.ndarray) -> np.ndarray:
        X = x.reshape(T, J, 3)
        P = X[t_seen, j_seen]
        z = np.maximum(P[:, 2], 1e-3)
        proj = np.stack([k.fx * P[:, 0] / z + k.cx, k.fy * P[:, 1] / z + k.cy], 1)
        r_proj = ((proj - u_obs) * sw[:, None]).ravel()
        d = X[bl_t, b_loc[bl_b]] - X[bl_t, a_loc[bl_b]]
        r_len = (np.linalg.norm(d, axis=1) - lengths[bl_b]) / w.sigma_len
        dp = X[pr_t, b_loc[pr_b]] - X[pr_t, a_loc[pr_b]]
        r_pr = ((dp - pr_val) / w.sigma_prior).ravel()
        r_acc = ((X[2:] - 2 * X[1:-1] + X[:-2]) / sig_acc).ravel()
        r_st = ((X[st_t, st_j] - X[st_t - 1, st_j]) / sig_st).ravel()
        h = _knee_hinge(X)[0]
        r_lim = (np.maximum(h - sin_max, 0.0) / w.sigma_knee).ravel()
        return np.concatenate([r_proj, r_len, r_pr, r_acc, r_st, r_lim])

    # Constant parts of the Jacobian: the prior, acceleration and stance residuals are linear.
    rows_c, cols_c, vals_c = [], [], []
    base = n_proj + n_len
    for c in range(3):
        r = base + 3 * np.arange(len(pr_t)) + c
        rows_c += [r, r]
        cols_c += [var(pr_t, b_loc[pr_b]) + c, var(pr_t, a_loc[pr_b]) + c]
        vals_c += [np.full(len(r), 1 / w.sigma_prior), np.full(len(r), -1 / w.sigma_prior)]
    if T > 2:
        tt, jj, cc = np.meshgrid(np.arange(T - 2), np.arange(J), np.arange(3), indexing="ij")
        r = base + n_pr + ((tt * J + jj) * 3 + cc).ravel()
        for off, coef in ((0, 1.0), (1, -2.0), (2, 1.0)):
            rows_c.append(r)
            cols_c.append(var((tt + off).ravel(), jj.ravel()) + cc.ravel())
            vals_c.append(np.full(len(r), coef / sig_acc))
    for c in range(3):
        r = base + n_pr + n_acc + 3 * np.arange(len(st_t)) + c
        rows_c += [r, r]
        cols_c += [var(st_t, st_j) + c, var(st_t - 1, st_j) + c]
        vals_c += [np.full(len(r), 1 / sig_st), np.full(len(r), -1 / sig_st)]
    rows_c, cols_c, vals_c = (np.concatenate(v) for v in (rows_c, cols_c, vals_c))

    def jacobian(x: np.ndarray):
        X = x.reshape(T, J, 3)
        P = X[t_seen, j_seen]
        z = np.maximum(P[:, 2], 1e-3)
        col = var(t_seen, j_seen)
        ru = 2 * np.arange(len(t_seen))
        rows = [ru, ru, ru + 1, ru + 1]
        cols = [col, col + 2, col + 1, col + 2]
        vals = [k.fx / z * sw, -k.fx * P[:, 0] / z**2 * sw, k.fy / z * sw, -k.fy * P[:, 1] / z**2 * sw]
        d = X[bl_t, b_loc[bl_b]] - X[bl_t, a_loc[bl_b]]
        unit = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9) / w.sigma_len
        rl = n_proj + np.arange(n_len)
        for c in range(3):
            rows += [rl, rl]
            cols += [var(bl_t, b_loc[bl_b]) + c, var(bl_t, a_loc[bl_b]) + c]
            vals += [unit[:, c], -unit[:, c]]
        h, grads = _knee_hinge(X)
        active = (h > sin_max) / w.sigma_knee  # (T, 2): one-sided, zero slope when within the limit
        rk = n_res - n_lim + 2 * np.arange(T)[:, None] + np.arange(2)
        tk = np.broadcast_to(np.arange(T)[:, None], (T, 2))
        for joints, grad in zip(_KNEE_CHAINS.T, grads):  # hip, knee, ankle columns
            for c in range(3):
                rows.append(rk.ravel())
                cols.append(var(tk.ravel(), np.broadcast_to(joints, (T, 2)).ravel()) + c)
                vals.append((grad[..., c] * active).ravel())
        rows = np.concatenate([*rows, rows_c])
        cols = np.concatenate([*cols, cols_c])
        vals = np.concatenate([*vals, vals_c])
        return coo_matrix((vals, (rows, cols)), shape=(n_res, T * J * 3)).tocsr()

    return _levenberg_marquardt(residuals, jacobian, init.ravel(), w).reshape(T, J, 3)


def _solve_banded_spd(A, b: np.ndarray) -> np.ndarray:
    """Solve the symmetric positive-definite A x = b by banded Cholesky. Variables are ordered by
    frame and only frames t−2…t+2 interact, so A is banded; LAPACK's banded solver measured
    ~1.4× faster than SuperLU's best ordering on these systems."""
    coo = A.tocoo()
    upper = coo.row <= coo.col
    rows, cols = coo.row[upper], coo.col[upper]
    u = int((cols - rows).max(initial=0))
    ab = np.zeros((u + 1, A.shape[0]))
    np.add.at(ab, (u + rows - cols, cols), coo.data[upper])
    return solveh_banded(ab, b, check_finite=False)


def _levenberg_marquardt(fun, jac, x: np.ndarray, w: FitWeights) -> np.ndarray:
    """Levenberg–Marquardt with exact banded solves and soft-L1 reweighting (IRLS). Exact steps
    matter here: measured on the demo, 5 of these iterations fit as well as 25 evaluations of
    scipy's least_squares (trf/LSMR), and conjugate gradients stall on the stiff time coupling.
    (Replacing that coupling by a pull toward a low-passed trajectory made each frame's block
    independent and 10× faster, but fitted no better than no smoothness term at all.)"""
    lam = 1e-3

    def robust_cost(res: np.ndarray) -> float:
        return float(np.sum(2 * (np.sqrt(1 + (res / w.robust_scale) ** 2) - 1)))

    r = fun(x)
    cost = robust_cost(r)
    for _ in range(int(w.max_iterations)):
        Jm = jac(x)
        iw = 1.0 / np.sqrt(1 + (r / w.robust_scale) ** 2)  # soft-L1: ρ'(z) = 1/√(1+z)
        JtW = Jm.T.multiply(iw).tocsr()
        A = (JtW @ Jm).tocsc()
        g = JtW @ r
        diag = diags(np.maximum(A.diagonal(), 1e-9))
        while True:
            x_new = x + _solve_banded_spd(A + lam * diag, -g)
            r_new = fun(x_new)
            c_new = robust_cost(r_new)
            if c_new < cost:
                x, r, lam = x_new, r_new, max(lam / 3, 1e-7)
                gain, cost = (cost - c_new) / max(cost, 1e-12), c_new
                break
            lam *= 4
            if lam > 1e6:
                return x
        if gain < 1e-5:
            break
    return x


def camera_prior(world: np.ndarray, scale: float, pixels: np.ndarray, k: Intrinsics) -> np.ndarray:
    """MediaPipe's root-relative world joints (T, 33, 3), scaled to metres and turned to face the
    camera ray through the pelvis (see ray_rotations)."""
    root_px = 0.5 * (pixels[:, MP["left_hip"]] + pixels[:, MP["right_hip"]])
    root_px = np.where(np.isfinite(root_px), root_px, [k.cx, k.cy])
    return np.einsum("tij,tnj->tni", ray_rotations(root_px, k), world * scale)


def bone_vectors(points: np.ndarray) -> np.ndarray:
    """(T, 33, 3) → (T, B, 3) vectors along FIT_BONES."""
    return points[:, FIT_BONES[:, 1]] - points[:, FIT_BONES[:, 0]]


def fit_skeleton(init: np.ndarray, prior: np.ndarray, lengths: np.ndarray, pixels: np.ndarray,
                 weights: np.ndarray, detected: np.ndarray, k: Intrinsics, fps: float,
                 fit_weights: FitWeights | None = None, stance: np.ndarray | None = None) -> np.ndarray:
    """Refine camera-space MediaPipe-33 markers `init` (T, 33, 3; finite on detected frames) with
    the constrained fit, window by window over runs of detected frames (undetected stretches are
    not invented here). prior: (T, B, 3) bone vectors; lengths: (B,); weights: (T, 33)
    reprojection weights; stance: (T, 33) landmarks standing still (contacts.stationary_feet).
    Face landmarks follow the nose rigidly. Returns (T, 33, 3)."""
    w = fit_weights or DEFAULT_WEIGHTS
    out = init.copy()
    det = np.flatnonzero(detected & np.isfinite(init[:, FIT_JOINTS]).all(axis=(1, 2)))
    if len(det) < 3:
        return out
    breaks = np.flatnonzero(np.diff(det) > 1) + 1
    for run in np.split(det, breaks):
        if len(run) < 3:
            continue
        step = max(w.window - w.overlap, 1)
        blended = np.zeros((len(run), len(FIT_JOINTS), 3))
        total = np.zeros((len(run), 1, 1))
        for s0 in range(0, max(len(run) - w.overlap, 1), step):
            idx = run[s0:s0 + w.window]
            if len(idx) < 3:
                continue
            sol = fit_window(init[idx][:, FIT_JOINTS], pixels[idx][:, FIT_JOINTS],
                             weights[idx][:, FIT_JOINTS], prior[idx], lengths, k, fps, w,
                             None if stance is None else stance[idx][:, FIT_JOINTS])
            # Triangular blend in overlaps so window seams do not show as jumps.
            n = len(idx)
            ramp = np.minimum(1.0, np.minimum(np.arange(1, n + 1), np.arange(n, 0, -1)) / max(w.overlap, 1))
            blended[s0:s0 + n] += sol * ramp[:, None, None]
            total[s0:s0 + n] += ramp[:, None, None]
        fitted = blended / np.maximum(total, 1e-9)
        out[np.ix_(run, FIT_JOINTS)] = fitted
        for anchor, riders in _RIDERS.items():
            shift = out[run][:, [anchor]] - init[run][:, [anchor]]
            out[np.ix_(run, riders)] = init[run][:, riders] + shift
    return out
