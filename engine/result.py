"""The result folder OUT/<stem>/: the names of its core files and the keys of its markers npz,
written by the pipeline and read back as one typed object by the Blender scene, headless.py and the
benchmarks (as glTF-Blender-IO's io/ is read by its blender/ side). One place to change when a
field is added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RUN_JSON = "run.json"
MARKERS_NPZ = "_markers.npz"  # after the stem


def core_files(stem: str) -> dict[str, str]:
    """{key: file name} of the files every run writes (the biomechanics, SCAIL and mesh stages
    add theirs)."""
    return {"landmarks_csv": f"{stem}_raw_landmarks.csv", "initial_trc": f"{stem}_initial.trc",
            "markers_npz": f"{stem}{MARKERS_NPZ}", "quality_csv": f"{stem}_quality.csv",
            "run_json": RUN_JSON}


def final_files(stem: str) -> dict[str, str]:
    """{key: file name} of the final (levelled, augmented) markers the biomechanics stage writes."""
    return {"final_trc": f"{stem}_final.trc", "final_c3d": f"{stem}_final.c3d"}


def read_record(folder: str | Path) -> dict:
    """run.json of an output folder; {} when it is absent or unreadable (a hand-made folder)."""
    try:
        record = json.loads((Path(folder) / RUN_JSON).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


@dataclass(frozen=True)
class View:
    """One camera of a calibrated multi-camera run (index 0 is the first video's)."""

    name: str
    K: np.ndarray  # (3, 3) pixels of its decoded video
    R: np.ndarray  # (3, 3) x_c = R @ x + t, x in the engine frame (camera 0's)
    t: np.ndarray  # (3,)
    size: tuple[int, int]  # width, height
    video: Path | None
    offset: int  # result frame i is this video's frame first_frame + offset + i

    @property
    def intrinsics(self) -> dict:
        K = self.K
        return {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2],
                "width": self.size[0], "height": self.size[1]}


def write_markers(path: Path, *, markers_33: np.ndarray, markers_22: np.ndarray, pixels: np.ndarray,
                  visibility: np.ndarray, detected: np.ndarray, K: np.ndarray, fps: float,
                  first_frame: int, bone_lengths: np.ndarray, image_size: tuple[int, int],
                  video: Path, views: list[View] | None = None, hands: np.ndarray | None = None,
                  face: np.ndarray | None = None) -> None:
    """`<stem>_markers.npz`: the engine-frame markers and what they came from; `hands`: a
    --holistic run's (T, 2, 21, 3) left and right hands (engine/hands.py), same frame; `face`: its
    (T, 3) jaw and eyelid channels (engine/face.py)."""
    extra = {}
    if hands is not None:
        extra["hands_camera"] = hands.astype(np.float32)
    if face is not None:
        extra["face_expressions"] = face.astype(np.float32)
    if views:
        extra |= {"views_names": np.array([v.name for v in views]),
                 "views_K": np.array([v.K for v in views]), "views_R": np.array([v.R for v in views]),
                 "views_t": np.array([v.t for v in views]),
                 "views_size": np.array([v.size for v in views]),
                 "views_video": np.array([str(v.video or "") for v in views]),
                 "views_offset": np.array([v.offset for v in views])}
    np.savez_compressed(path, markers_33_camera=markers_33.astype(np.float32),
                        markers_22_camera=markers_22.astype(np.float32), pixels=pixels,
                        visibility=visibility, detected=detected, K=K, fps=fps, first_frame=first_frame,
                        bone_lengths=bone_lengths, image_size=np.array(image_size),
                        video_path=str(video), **extra)


@dataclass
class Result:
    """A finished output folder, read back."""

    folder: Path
    stem: str
    markers_camera: np.ndarray  # (T, 33, 3) engine camera frame, metres
    markers_22_camera: np.ndarray  # (T, 22, 3) Pose2Sim's markers, same frame
    pixels: np.ndarray  # (T, 33, 2) the first camera's raw 2D landmarks
    visibility: np.ndarray  # (T, 33) their MediaPipe visibility
    fps: float
    first_frame: int
    K: np.ndarray  # (3, 3)
    intrinsics: dict  # fx, fy, cx, cy, width, height
    video: Path | None
    record: dict = field(default_factory=dict)  # run.json ({} when absent)
    views: list[View] = field(default_factory=list)  # all cameras of a multi-camera run, else []
    hands_camera: np.ndarray | None = None  # (T, 2, 21, 3) a --holistic run's hands, else None
    face: np.ndarray | None = None  # (T, 3) its jaw and eyelids (engine/face.CHANNELS), else None


def people(folder: str | Path) -> list[tuple[int, Path]]:
    """(ID, subfolder) of each person of a multi-person result (`--people`: its run.json lists
    them); [] for a single-person folder."""
    folder = Path(folder)
    run_json = folder / RUN_JSON
    if not run_json.is_file():
        return []
    listed = json.loads(run_json.read_text()).get("people") or []
    return [(int(p["id"]), folder / p["folder"]) for p in listed]


def find_markers(folder: Path) -> Path:
    """The markers npz of an output folder; FileNotFoundError names the folder."""
    npzs = sorted(Path(folder).glob(f"*{MARKERS_NPZ}"))
    if not npzs and people(folder):
        raise FileNotFoundError(f"{folder} holds several people (person_<ID>/ folders): load "
                                "each of them (engine.result.people)")
    if not npzs:
        raise FileNotFoundError(f"no *{MARKERS_NPZ} in {folder} "
                                "(is it a finished HumanPose3D output folder?)")
    return npzs[0]


def load(folder: str | Path) -> Result:
    """Read `<stem>_markers.npz` (and run.json when present) from an output folder."""
    folder = Path(folder)
    npz = find_markers(folder)
    stem = npz.name[: -len(MARKERS_NPZ)]
    with np.load(npz) as d:
        markers = np.asarray(d["markers_33_camera"], dtype=np.float64)
        T = markers.shape[0]

        def optional(key: str, shape: tuple[int, ...], fill: float = np.nan) -> np.ndarray:
            # Older or hand-made folders may lack what the scene does not need.
            return np.asarray(d[key], dtype=np.float64) if key in d.files else np.full(shape, fill)

        markers_22 = optional("markers_22_camera", (T, 22, 3))
        pixels = optional("pixels", (T, 33, 2))
        visibility = optional("visibility", (T, 33), 0.0)
        K = np.asarray(d["K"], dtype=np.float64)
        fps = float(d["fps"])
        first = int(d["first_frame"])
        views = _read_views(d)
        hands = np.asarray(d["hands_camera"], dtype=np.float64) if "hands_camera" in d.files else None
        face = np.asarray(d["face_expressions"], dtype=np.float64) if "face_expressions" in d.files else None
    record = read_record(folder)
    k = dict(record.get("intrinsics") or {})
    if not k:  # without run.json the image size comes from the principal point (centred by default)
        k = {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2],
             "width": int(round(2 * K[0, 2])), "height": int(round(2 * K[1, 2]))}
    video = record.get("video", {}).get("path")
    return Result(folder, stem, markers, markers_22, pixels, visibility, fps, first, K, k,
                  Path(video) if video else None, record, views, hands, face)


def _read_views(d) -> list[View]:
    """The views_* arrays of a multi-camera run's markers npz; [] for a single camera."""
    if "views_K" not in d:
        return []
    names, K, R, t = d["views_names"], d["views_K"], d["views_R"], d["views_t"]
    size, video, offset = d["views_size"], d["views_video"], d["views_offset"]
    return [View(str(names[c]), np.asarray(K[c], dtype=np.float64), np.asarray(R[c], dtype=np.float64),
                 np.asarray(t[c], dtype=np.float64).reshape(3), (int(size[c][0]), int(size[c][1])),
                 Path(str(video[c])) if str(video[c]) else None, int(offset[c]))
            for c in range(len(names))]
