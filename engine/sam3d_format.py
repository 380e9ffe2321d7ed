"""SAM 3D Body's output format: what its estimator returns per image and person
(`SAM3DBodyEstimator.process_one_image` in facebookresearch/sam-3d-body), written here for the
Anny fit with the arrays stacked over frames, and read back from either.

The convention, SAM 3D Body's own:
    pred_vertices, pred_keypoints_3d, pred_joint_coords   metres, camera axes (OpenCV: x right,
        y down, z forward) — the body model's own frame (Y up, Z toward the camera) with Y and Z
        flipped — and relative to the body: add pred_cam_t to place them in the camera frame.
    pred_cam_t          the body's root in the camera frame, metres
    pred_keypoints_2d   (pred_keypoints_3d + pred_cam_t) projected with focal_length and the principal
                        point at the image centre, pixels
    global_rot          the body's rotation in the body model's frame (Y up; zero for a body upright
                        and facing the camera) as roma's "ZYX" Euler angles, as SAM 3D Body gives it
    body_pose_params, shape_params   the body model's own parameters: here Anny's, not MHR's (see
                        body_pose_bones and shape_param_names)
Our file adds `faces` (SAM 3D Body keeps them on its estimator), `frame_index`, `valid`, `K`, the MHR-70
keypoint names and Anny's rig (rest shape, bones, skin weights, per-frame bone transforms), so that
Blender can rebuild the mesh as a skinned, animated body without Anny installed.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera import Intrinsics, project
from .coords import flip_yz
from .joint_sets import MHR_70

# Per-frame arrays of our file, stacked over frames (one person).
SAM3D_KEYS = ("pred_vertices", "pred_keypoints_3d", "pred_keypoints_2d", "pred_cam_t", "focal_length",
              "global_rot", "body_pose_params", "shape_params", "pred_joint_coords", "bbox")
MESH_FORMATS = ("obj", "ply", "glb")


def sam3d_arrays(fit, intrinsics: Intrinsics, frame_index: np.ndarray, fps: float) -> dict[str, np.ndarray]:
    """A FitResult (engine.anny_fit) as SAM 3D Body's arrays stacked over frames (NaN where a frame
    has no fit), plus our additions. fit.vertices (165 kB a frame) becomes pred_vertices in place:
    root-relative afterwards, not copied."""
    import roma  # comes with anny; only a mesh run gets here
    import torch

    root = fit.root.astype(np.float32)
    rel = lambda x: (x - root[:, None]).astype(np.float32)  # noqa: E731
    n = len(root)
    kp_cam = fit.keypoints
    bbox = np.full((n, 4), np.nan, np.float32)
    ok = fit.valid
    with np.errstate(invalid="ignore", divide="ignore"):
        kp2d = project(kp_cam, intrinsics).astype(np.float32)
        for i in np.flatnonzero(ok):  # a frame at a time: the vertices can be gigabytes
            uv = project(fit.vertices[i], intrinsics)
            bbox[i] = np.concatenate([uv.min(0), uv.max(0)])
    # Anny's model frame (Z up, facing -Y) → MHR's (Y up, facing +Z); rotation in MHR's frame.
    anny_to_mhr = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    flip = np.diag([1.0, -1.0, -1.0])
    rot = flip @ np.nan_to_num(fit.rotation) @ anny_to_mhr.T
    euler = roma.rotmat_to_euler("ZYX", torch.tensor(rot)).numpy().astype(np.float32)
    euler[~ok] = np.nan
    shape = np.array(list(fit.phenotype.values()) + list(fit.local_changes.values()), np.float32)
    n_b = len(fit.bone_labels)
    return {
        "pred_vertices": np.subtract(fit.vertices, root[:, None], out=fit.vertices),
        "faces": fit.faces.astype(np.int32),
        "pred_keypoints_3d": rel(kp_cam),
        "pred_keypoints_2d": kp2d,
        "pred_cam_t": root,
        "focal_length": np.where(ok, np.float32(intrinsics.fx), np.nan).astype(np.float32),
        "global_rot": euler,
        "body_pose_params": np.where(ok[:, None], fit.pose.reshape(n, n_b * 3), np.nan).astype(np.float32),
        "shape_params": np.where(ok[:, None], np.tile(shape, (n, 1)), np.nan).astype(np.float32),
        "pred_joint_coords": rel(fit.joints),
        "bbox": bbox,
        "frame_index": np.asarray(frame_index, np.int64),
        "valid": ok.astype(bool),
        "K": intrinsics.K.astype(np.float32),
        "image_size": np.array([intrinsics.width, intrinsics.height], np.int32),
        "fps": np.float64(fps),
        "keypoint_names": np.array(MHR_70),
        "shape_param_names": np.array(list(fit.phenotype) + list(fit.local_changes)),
        "body_pose_bones": np.array(fit.bone_labels),
        "body_model": np.array("anny"),
        # Anny's rig: rest shape and bones in its model frame, skinning, and per frame the transform
        # of every bone from its rest pose to the camera frame (linear blend skinning of
        # anny_rest_vertices with these gives pred_vertices + pred_cam_t).
        "anny_rest_vertices": fit.rest_vertices.astype(np.float32),
        "anny_rest_bone_poses": fit.rest_bone_poses.astype(np.float32),
        "anny_bone_parents": np.asarray(fit.bone_parents, np.int32),
        "anny_skin_indices": fit.skin_indices.astype(np.int32),
        "anny_skin_weights": fit.skin_weights.astype(np.float32),
        "anny_bone_transforms": fit.bone_transforms.astype(np.float32),
    }


def write_frame_meshes(folder: Path, stem: str, arrays: dict, formats: tuple[str, ...]) -> list[Path]:
    """One mesh file per fitted frame and format, `<stem>_<video frame>.<ext>`, with the vertices in
    the body model's Y-up frame (pred_vertices + pred_cam_t with Y and Z flipped back), which is how
    OBJ, PLY and glTF viewers expect them."""
    import trimesh  # installed with anny

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    faces = arrays["faces"]
    for i in np.flatnonzero(arrays["valid"]):
        v = flip_yz(arrays["pred_vertices"][i] + arrays["pred_cam_t"][i])
        mesh = trimesh.Trimesh(vertices=v, faces=faces, process=False)
        for fmt in formats:
            path = folder / f"{stem}_{int(arrays['frame_index'][i]):06d}.{fmt}"
            mesh.export(path, file_type=fmt)
            out.append(path)
    return out


# -- reading: SAM 3D Body's results and our own file ---------------------------------------------

@dataclass
class PersonTrack:
    """One person over the frames of a result, in the camera frame (pred_vertices + pred_cam_t)."""

    vertices: np.ndarray  # (T, V, 3) metres, NaN where the person is absent
    faces: np.ndarray | None  # (F, 3), None when the result has none (SAM 3D Body's dicts omit them)
    frames: np.ndarray  # (T,) frame numbers
    focal_length: float | None = None
    image_size: tuple[int, int] | None = None


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def load_people(source) -> list[PersonTrack]:
    """People in a SAM 3D Body result: a .npz or .pkl file, or the object itself. Accepted: one
    person's dict; a list of dicts (the people of one image, as process_one_image returns it); a
    list of such lists, or a dict of them keyed by image (a sequence); or stacked arrays —
    pred_vertices (V, 3), (T, V, 3) or (T, P, V, 3) with pred_cam_t to match, as we write them.
    Faces come from a `faces` entry beside the people or in their dicts."""
    obj = _read(source) if isinstance(source, str | Path) else source
    faces = None
    if isinstance(obj, dict) and "pred_vertices" not in obj:
        faces = obj.get("faces")
        for key in ("outputs", "people", "frames", "results"):
            if key in obj:
                obj = obj[key]
                break
        else:  # {image name: people}
            obj = [obj[k] for k in sorted(k for k in obj if k != "faces")]
    if isinstance(obj, dict):
        return _stacked(obj, faces)
    frames = _as_frames(obj)
    if faces is None:
        faces = next((p["faces"] for people in frames for p in people if "faces" in p), None)
    return _link(frames, None if faces is None else _np(faces))


def _read(path: str | Path):
    path = Path(path)
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=True) as d:  # a SAM 3D Body dump may hold object arrays
            data = {k: d[k] for k in d.files}
        if "pred_vertices" not in data and len(data) == 1:  # np.savez(f, outputs=list_of_dicts)
            (value,) = data.values()
            return value.item() if value.dtype == object and value.shape == () else list(value)
        return data
    with path.open("rb") as f:
        return pickle.load(f)


def _as_frames(obj) -> list[list[dict]]:
    """A list of people (one image) or a list of lists (a sequence) → frames of people."""
    items = list(obj)
    if not items:
        return []
    if isinstance(items[0], dict):
        return [items]
    return [list(people) if people is not None else [] for people in items]


def _stacked(d: dict, faces=None) -> list[PersonTrack]:
    v = _np(d["pred_vertices"]).astype(np.float64)
    t = _np(d.get("pred_cam_t", np.zeros(3))).astype(np.float64)
    faces = d.get("faces", faces)
    if v.ndim == 2:
        v, t = v[None, None], t.reshape(1, 1, 3)
    elif v.ndim == 3:
        v, t = v[:, None], t.reshape(-1, 1, 3)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"pred_vertices must be (V, 3), (T, V, 3) or (T, P, V, 3), got {v.shape}")
    frames = _np(d["frame_index"]).astype(int) if "frame_index" in d else np.arange(len(v))
    focal = _np(d["focal_length"]).astype(float).ravel() if "focal_length" in d else np.array([])
    focal_value = float(np.nanmedian(focal)) if focal.size and np.isfinite(focal).any() else None
    size = tuple(int(x) for x in _np(d["image_size"])) if "image_size" in d else None
    world = (v + t[:, :, None, :]).astype(np.float32)
    faces = None if faces is None else _np(faces).astype(np.int64)
    return [PersonTrack(world[:, p], faces, frames, focal_value, size) for p in range(world.shape[1])]


def _link(frames: list[list[dict]], faces: np.ndarray | None) -> list[PersonTrack]:
    """Follow people from frame to frame (SAM 3D Body does not track): each person continues the
    track whose last root position is nearest, new tracks start for the rest."""
    tracks: list[dict] = []
    focal = [float(_np(p["focal_length"]).ravel()[0]) for people in frames for p in people
             if "focal_length" in p]
    for i, people in enumerate(frames):
        free = list(range(len(tracks)))
        for p in people:
            cam_t = _np(p.get("pred_cam_t", np.zeros(3))).astype(np.float64).reshape(3)
            verts = _np(p["pred_vertices"]).astype(np.float64) + cam_t
            if free:
                j = min(free, key=lambda k: np.linalg.norm(tracks[k]["last"] - cam_t))
                free.remove(j)
            else:
                tracks.append({"verts": {}, "last": cam_t})
                j = len(tracks) - 1
            tracks[j]["verts"][i] = verts
            tracks[j]["last"] = cam_t
    out = []
    for tr in tracks:
        n_v = next(iter(tr["verts"].values())).shape[0]
        v = np.full((len(frames), n_v, 3), np.nan, np.float32)
        for i, verts in tr["verts"].items():
            v[i] = verts
        out.append(PersonTrack(v, faces, np.arange(len(frames)), float(np.median(focal)) if focal else None))
    return out
