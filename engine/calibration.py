"""Camera calibrations for the multi-view mode: Pose2Sim's calibration TOML (OpenCV convention),
read with the stdlib, and matched against the videos they belong to.

A Pose2Sim TOML holds one table per camera (name, size [w, h], matrix, distortions [k1 k2 p1 p2],
rotation as a Rodrigues vector and translation in metres, world → camera) and a [metadata] table.
Other systems' files (Qualisys .qca.txt, Vicon .xcp, OptiTrack, EasyMocap...) are turned into one by
Pose2Sim's own converters: `python -m engine.calibration FILE OUT.toml` runs the Qualisys one.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from .errors import EngineError

# Encoders pad frames to 16-pixel macroblocks (1080 → 1088) and calibration tools sometimes report
# the padded size: a side this much larger than the decoded one is the same sensor, cropped.
_PADDING_PX = 16


@dataclass(frozen=True)
class Camera:
    name: str
    K: np.ndarray  # (3, 3) pixels of the decoded video
    dist: np.ndarray  # OpenCV (k1, k2, p1, p2[, k3])
    R: np.ndarray  # (3, 3) world → camera, OpenCV axes (x right, y down, z forward)
    t: np.ndarray  # (3,) metres
    size: tuple[int, int]  # (w, h) in pixels
    fisheye: bool = False

    @property
    def P(self) -> np.ndarray:
        """(3, 4) world → normalised image coordinates."""
        return np.hstack([self.R, self.t[:, None]])

    @property
    def centre(self) -> np.ndarray:
        """The camera's position in the world."""
        return -self.R.T @ self.t


def read_calibration(path: Path) -> list[Camera]:
    """Cameras of a Pose2Sim calibration TOML, in the file's order; one clear line if unusable."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"--calib file not found: {path}")
    if path.name.lower().endswith(".qca.txt"):
        raise EngineError(f"--calib wants a Pose2Sim calibration .toml; convert {path.name} first: "
                          f"python -m engine.calibration {path} calib.toml")
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EngineError(f"--calib {path.name} is not a TOML file: {exc}") from None
    cams = []
    for key, t in tables.items():
        if key == "metadata" or not isinstance(t, dict):
            continue
        try:
            K = np.asarray(t["matrix"], dtype=np.float64).reshape(3, 3)
            dist = np.asarray(t.get("distortions", [0, 0, 0, 0]), dtype=np.float64).ravel()
            rvec = np.asarray(t["rotation"], dtype=np.float64).reshape(3)
            tvec = np.asarray(t["translation"], dtype=np.float64).reshape(3)
            w, h = (int(round(float(v))) for v in t["size"])
        except (KeyError, ValueError, TypeError) as exc:
            raise EngineError(f"--calib {path.name}: camera [{key}] lacks a valid {exc} "
                              "(want name, size, matrix, distortions, rotation, translation)") from None
        finite = all(np.isfinite(a).all() for a in (K, dist, rvec, tvec))
        if not finite or K[0, 0] <= 0 or K[1, 1] <= 0 or w <= 0 or h <= 0:
            raise EngineError(f"--calib {path.name}: camera [{key}] has an impossible matrix or size")
        R = Rotation.from_rotvec(rvec).as_matrix()
        cams.append(Camera(str(t.get("name", key)), K, dist, R, tvec, (w, h), bool(t.get("fisheye"))))
    if len(cams) < 2:
        raise EngineError(f"--calib {path.name} holds {len(cams)} camera(s); triangulation needs at least 2")
    return cams


def match_videos(cams: list[Camera], videos: list[Path]) -> list[Camera]:
    """The calibrated camera of each video: by name when every video stem names a camera
    (cam01.mp4 ↔ [cam01]; then any subset of the cameras may be used), else in order (Pose2Sim's
    rule: sorted cameras ↔ sorted videos), which needs as many cameras as videos."""
    by_name = {c.name: c for c in cams}
    if all(v.stem in by_name for v in videos) and len({v.stem for v in videos}) == len(videos):
        return [by_name[v.stem] for v in videos]
    if len(cams) != len(videos):
        raise EngineError(f"--calib describes {len(cams)} cameras but {len(videos)} videos were given "
                          "(name the videos after the cameras to use some of them)")
    return list(cams)


def fit_to_video(cam: Camera, width: int, height: int, video: str) -> Camera:
    """`cam` for frames decoded at width × height: the same size, the calibrated size padded to
    macroblocks (the decoded frame is its top-left part), or an exact downscale (binning)."""
    cw, ch = cam.size
    if (cw, ch) == (width, height):
        return cam
    if 0 <= cw - width < _PADDING_PX and 0 <= ch - height < _PADDING_PX:
        return replace(cam, size=(width, height))
    sx, sy = width / cw, height / ch
    if abs(sx - sy) < 1e-9 and sx < 1 and (1 / sx).is_integer():
        K = cam.K.copy()
        K[:2] *= sx
        # The pixel centres move too: (u + 0.5) · s - 0.5.
        K[:2, 2] += 0.5 * sx - 0.5
        return replace(cam, K=K, size=(width, height))
    raise EngineError(f"--calib camera {cam.name} is {cw}x{ch} but {video} decodes at {width}x{height}")


def relative_to(cams: list[Camera], ref: int = 0) -> list[Camera]:
    """The same cameras with camera `ref`'s frame as the world (it gets R = I, t = 0): the engine's
    3D frame is one camera's frame, so the single-camera outputs stay valid as they are."""
    R0, t0 = cams[ref].R, cams[ref].t
    # x_c = R_c X + t_c and X = R0ᵀ (x_0 - t0)  ⇒  x_c = R_c R0ᵀ x_0 + (t_c - R_c R0ᵀ t0)
    out = []
    for c in cams:
        R = c.R @ R0.T
        out.append(replace(c, R=R, t=c.t - R @ t0))
    return out


def convert_qualisys(src: Path, dest: Path) -> None:
    """Qualisys .qca.txt → Pose2Sim TOML through Pose2Sim's own converter (needs lxml)."""
    try:
        from Pose2Sim.calibration import calib_qca_fun, toml_write
    except ImportError as exc:
        raise EngineError(f"converting {src.name} needs Pose2Sim's calibration module and lxml "
                          f"(pip install lxml): {exc}") from None
    _, C, S, D, K, R, T = calib_qca_fun(str(src))
    dest.parent.mkdir(parents=True, exist_ok=True)
    toml_write(str(dest), C, S, D, K, R, T)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not args[0].lower().endswith(".qca.txt"):
        sys.stderr.write("usage: python -m engine.calibration FILE.qca.txt OUT.toml\n")
        return 2
    try:
        convert_qualisys(Path(args[0]), Path(args[1]))
        read_calibration(Path(args[1]))
    except EngineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    print(f"wrote {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
