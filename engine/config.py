"""Run configuration: one dataclass shared by the CLI, the Blender add-on and the tests."""

from __future__ import annotations

import importlib.util
import math
import numbers
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import EngineError

_MAX_FILTER_ORDER = 12
_MAX_CYCLES = 32


def check_scail_size(size: tuple[int, int]) -> None:
    """SCAIL render size: even sides (video encoders need them) from 16 to 4096 pixels."""
    ok = len(size) == 2 and all(isinstance(v, numbers.Integral) and 16 <= v <= 4096 and v % 2 == 0
                                for v in size)
    if not ok:
        got = "x".join(map(str, size))
        raise EngineError(f"--scail-size must be WxH with even sides from 16 to 4096, got {got}")


@dataclass
class RunConfig:
    video: Path
    height_m: float | None  # None only with --calib: the triangulated body gives it
    mass_kg: float = 70.0
    out_dir: Path = Path("output")
    fov_deg: float = 55.0
    focal_px: float | None = None
    frames: tuple[int, int | None] | None = None  # [start, stop) like a Python slice
    roi: tuple[int, int, int, int] | None = None  # x, y, w, h in pixels of the (rotated) frame
    holistic: bool = False
    pose_model: str = "full"  # BlazePose landmark model: lite, full or heavy (engine.bundles)
    scail: bool = False  # SMPL-24 NLF-format poses + SCAIL's 3D pose render (engine.scail)
    scail_size: tuple[int, int] | None = None  # render W, H; None: SCAIL's 512x896 / 896x512
    visibility_min: float = 0.3
    max_gap_s: float = 0.5
    estimate_missing: bool = False
    cutoff_hz: float = 6.0
    filter_order: int = 4
    hold_bone_lengths: bool = True
    fit_skeleton: bool = True  # skeleton-constrained fit to the 2D landmarks (skeleton_fit.py)
    foot_lock: bool = True  # the fit holds heels and toes still where they stand (contacts.py)
    lifter: Path | None = None  # VideoPose3D checkpoint: its 3D replaces MediaPipe's as the prior
    lifter_layout: str = "coco17"  # 2D keypoint order the checkpoint was trained on
    augmentation_cycles: int = 4  # LSTM heading ensemble size (see engine.augment.augment)
    joint_angles: bool = True  # ISB angles: CSV, MOT and (angle_plots) PNG
    angle_plots: bool = True
    opensim: bool = False  # scale Pose2Sim's OpenSim model and run inverse kinematics
    mesh: bool = False  # Anny body mesh per frame in SAM 3D Body's format (engine.mesh)
    mesh_formats: tuple[str, ...] = ()  # with mesh: also one obj / ply / glb file per frame
    sex: str | None = None  # for the mesh: "female" / "male"; None: fitted
    age_years: float | None = None  # for the mesh; None: an adult
    force: bool = False
    views: tuple[Path, ...] = ()  # further calibrated cameras' videos (multiview.py); needs calib
    calib: Path | None = None  # Pose2Sim calibration TOML of `video` and `views` (calibration.py)
    sync_offsets: tuple[int, ...] | None = None  # frames each video starts late by; None: from motion
    people: str = "largest"  # whom to follow: largest, all, N or ID,ID (engine.people)

    def __post_init__(self) -> None:
        self.video = Path(self.video)
        self.out_dir = Path(self.out_dir)
        self.views = tuple(Path(v) for v in self.views)
        self.calib = Path(self.calib) if self.calib is not None else None
        self.validate()

    def validate(self) -> None:
        """Reject impossible settings before any work starts."""
        def finite(x: float) -> bool:
            return isinstance(x, int | float) and math.isfinite(x)

        if self.height_m is None and self.calib is None:
            raise EngineError("--height is needed: the subject's height in metres sets the scale "
                              "(only a calibrated multi-camera run measures it)")
        if self.height_m is not None and (not finite(self.height_m) or not 0.5 <= self.height_m <= 2.6):
            raise EngineError(
                f"--height must be the subject's height in metres (0.5–2.6), got {self.height_m}")
        self._validate_views()
        if not finite(self.mass_kg) or not 10 <= self.mass_kg <= 400:
            raise EngineError(f"--mass must be in kilograms (10–400), got {self.mass_kg}")
        if self.focal_px is not None and (not finite(self.focal_px) or self.focal_px <= 0):
            raise EngineError(f"--focal-px must be a positive number of pixels, got {self.focal_px}")
        if not finite(self.fov_deg) or not 1 <= self.fov_deg <= 170:
            raise EngineError(f"--fov must be between 1 and 170 degrees, got {self.fov_deg}")
        if not finite(self.visibility_min) or not 0 <= self.visibility_min <= 1:
            raise EngineError(f"--visibility-min must be between 0 and 1, got {self.visibility_min}")
        if not finite(self.cutoff_hz) or self.cutoff_hz < 0:
            raise EngineError(f"--cutoff-hz must be ≥ 0 (0 turns filtering off), got {self.cutoff_hz}")
        if not finite(self.max_gap_s) or self.max_gap_s < 0:
            raise EngineError(f"--max-gap must be ≥ 0 seconds, got {self.max_gap_s}")
        order = self.filter_order
        if not isinstance(order, numbers.Integral) or not 2 <= order <= _MAX_FILTER_ORDER or order % 2:
            # High orders make scipy's design overflow or ring; found only after all detection.
            raise EngineError(f"--filter-order must be an even number from 2 to {_MAX_FILTER_ORDER}, "
                              f"got {self.filter_order}")
        cycles = self.augmentation_cycles
        if not isinstance(cycles, numbers.Integral) or not 1 <= cycles <= _MAX_CYCLES:
            raise EngineError(f"--augmentation-cycles must be a whole number from 1 to {_MAX_CYCLES}, "
                              f"got {cycles}")
        if self.opensim and importlib.util.find_spec("opensim") is None:
            raise EngineError("--opensim needs the opensim package: pip install --no-deps opensim==4.6")
        if self.mesh or self.mesh_formats or self.sex is not None or self.age_years is not None:
            from .mesh import available, check_mesh_options

            check_mesh_options(tuple(self.mesh_formats), self.sex, self.age_years)
            if self.mesh and not available():
                raise EngineError("--mesh needs the anny body model: pip install anny==0.6.2")
        from .bundles import pose_bundle

        pose_bundle(self.pose_model, self.holistic)  # a wrong name or a missing bundle: one line now
        if self.frames is not None:
            start, stop = self.frames
            if start < 0 or (stop is not None and stop <= start):
                raise EngineError(f"--frames must be A:B with 0 ≤ A < B, got {start}:{stop}")
        if self.roi is not None and (len(self.roi) != 4 or self.roi[2] <= 0 or self.roi[3] <= 0
                                     or self.roi[0] < 0 or self.roi[1] < 0):
            raise EngineError(f"--roi must be x,y,w,h with w, h > 0, got {self.roi}")
        if self.lifter is not None:
            self.lifter = Path(self.lifter)
            if not self.lifter.is_file():
                raise EngineError(f"--lifter checkpoint not found: {self.lifter}")
        if self.lifter_layout not in ("coco17", "h36m17"):
            raise EngineError(f"--lifter-layout must be coco17 or h36m17, got {self.lifter_layout}")
        if self.scail_size is not None:
            check_scail_size(self.scail_size)
        self._validate_people()

    def _validate_people(self) -> None:
        from .people import parse_people

        self.people = str(self.people).strip().lower()
        if parse_people(self.people) == "largest":
            return
        if self.calib is not None:
            raise EngineError("--people follows several people in one video; with --calib the "
                              "cameras follow the largest person")
        if self.roi is not None:
            raise EngineError("--roi picks one person; it cannot be combined with --people")
        if self.holistic:
            raise EngineError("--holistic tracks one person's hands and face; it cannot be combined "
                              "with --people")

    def _validate_views(self) -> None:
        if self.views and self.calib is None:
            raise EngineError(f"{1 + len(self.views)} videos need --calib FILE.toml (their cameras' "
                              "calibration) to be triangulated")
        if self.calib is None:
            if self.sync_offsets is not None:
                raise EngineError("--sync-offsets applies only to several videos with --calib")
            return
        if not self.views:
            raise EngineError("--calib needs at least two videos of the same moment, one per camera")
        if not self.calib.is_file():
            raise EngineError(f"--calib file not found: {self.calib}")
        videos = (self.video, *self.views)
        if len({Path(v).resolve() for v in videos}) < len(videos):
            raise EngineError("the same video is given twice: each camera needs its own video")
        if self.lifter is not None:
            raise EngineError("--lifter lifts one camera's 2D; with --calib the cameras triangulate")
        if self.sync_offsets is not None and len(self.sync_offsets) != len(videos):
            raise EngineError(f"--sync-offsets gives {len(self.sync_offsets)} offsets for "
                              f"{len(videos)} videos")

    @property
    def multiview(self) -> bool:
        return self.calib is not None

    @property
    def stem(self) -> str:
        return self.video.stem

    def to_json(self) -> dict:
        d = asdict(self)
        d["video"] = str(self.video)
        d["out_dir"] = str(self.out_dir)
        d["lifter"] = str(self.lifter) if self.lifter else None
        d["views"] = [str(v) for v in self.views]
        d["calib"] = str(self.calib) if self.calib else None
        return d
