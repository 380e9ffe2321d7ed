"""Run configuration: one dataclass shared by the CLI, the Blender add-on and the tests."""

from __future__ import annotations

import importlib.util
import math
import numbers
from dataclasses import asdict, dataclass, fields
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


@dataclass(frozen=True)
class RunConfig:
    """Every setting of one run, typed and checked once when it is made (values only: whether
    this Python has opensim, anny or the pose bundle is `check_runtime`'s, run where the engine
    runs, which may be another Python than the one that built the config)."""

    video: Path
    height_m: float | None  # None only with --calib: the triangulated body gives it
    mass_kg: float = 70.0
    out_dir: Path = Path("output")
    fov_deg: float = 55.0
    focal_px: float | None = None
    frames: tuple[int, int | None] | None = None  # [start, stop) like a Python slice
    roi: tuple[int, int, int, int] | None = None  # x, y, w, h in pixels of the (rotated) frame
    holistic: bool = False
    pose_model: str | None = None  # BlazePose model (engine.bundles); None: full, heavy with calib
    scail: bool = False  # SMPL-24 NLF-format poses + SCAIL's 3D pose render (engine.scail)
    scail_size: tuple[int, int] | None = None  # render W, H (turns scail on); None: 512x896 / 896x512
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
    angle_svg: bool = False  # each joint figure as SVG too: a third of the figures' time, so asked for
    opensim: bool = False  # scale Pose2Sim's OpenSim model and run inverse kinematics
    mesh: bool = False  # Anny body mesh per frame in SAM 3D Body's format (engine.mesh_stage)
    mesh_formats: tuple[str, ...] = ()  # also one obj / ply / glb file per frame (turns mesh on)
    sex: str | None = None  # for the mesh: "female" / "male"; None: fitted
    age_years: float | None = None  # for the mesh; None: an adult
    force: bool = False
    views: tuple[Path, ...] = ()  # further calibrated cameras' videos (multiview.py); needs calib
    calib: Path | None = None  # Pose2Sim calibration TOML of `video` and `views` (calibration.py)
    sync_offsets: tuple[int, ...] | None = None  # frames each video starts late by; None: from motion
    people: str = "largest"  # whom to follow: largest, all, N or ID,ID (engine.people)
    person_heights: tuple[tuple[int, float], ...] = ()  # (ID, metres) with --people; others: height_m
    person_masses: tuple[tuple[int, float], ...] = ()  # (ID, kg) with --people; others: mass_kg

    def __post_init__(self) -> None:
        def put(name: str, value) -> None:  # frozen: normalise once, here
            object.__setattr__(self, name, value)

        put("video", Path(self.video))
        put("out_dir", Path(self.out_dir))
        put("views", tuple(Path(v) for v in self.views))
        put("calib", Path(self.calib) if self.calib is not None else None)
        put("lifter", Path(self.lifter) if self.lifter is not None else None)
        put("mesh_formats", tuple(self.mesh_formats))
        for name in ("frames", "roi", "scail_size", "sync_offsets"):
            value = getattr(self, name)
            put(name, tuple(value) if value is not None else None)
        if self.pose_model is None:  # heavy's 2D triangulates closer (benchmarks/multiview.py)
            put("pose_model", "heavy" if self.calib is not None else "full")
        put("scail", self.scail or self.scail_size is not None)
        put("mesh", self.mesh or bool(self.mesh_formats))
        put("angle_svg", self.angle_svg and self.joint_angles and self.angle_plots)  # SVG of a PNG
        put("people", str(self.people).strip().lower())
        for name in ("person_heights", "person_masses"):  # JSON brings lists
            put(name, tuple((int(pid), float(v)) for pid, v in getattr(self, name)))
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
        if self.mesh or self.sex is not None or self.age_years is not None:
            from .mesh_stage import check_mesh_options

            check_mesh_options(self.mesh_formats, self.sex, self.age_years)
        from .bundles import POSE_MODELS

        if self.pose_model not in POSE_MODELS:
            raise EngineError(f"--pose-model must be one of {', '.join(POSE_MODELS)}, "
                              f"got {self.pose_model}")
        if self.frames is not None:
            start, stop = self.frames
            if start < 0 or (stop is not None and stop <= start):
                raise EngineError(f"--frames must be A:B with 0 ≤ A < B, got {start}:{stop}")
        if self.roi is not None and (len(self.roi) != 4 or self.roi[2] <= 0 or self.roi[3] <= 0
                                     or self.roi[0] < 0 or self.roi[1] < 0):
            raise EngineError(f"--roi must be x,y,w,h with w, h > 0, got {self.roi}")
        if self.lifter is not None:
            if not self.lifter.is_file():
                raise EngineError(f"--lifter checkpoint not found: {self.lifter}")
        if self.lifter_layout not in ("coco17", "h36m17"):
            raise EngineError(f"--lifter-layout must be coco17 or h36m17, got {self.lifter_layout}")
        if self.scail_size is not None:
            check_scail_size(self.scail_size)
        self._validate_people()

    def _validate_people(self) -> None:
        from .people import parse_people

        spec = parse_people(self.people)
        if spec == "largest":
            if self.person_heights or self.person_masses:
                raise EngineError("--person-height and --person-mass name people of --people all, N or "
                                  "ID,ID; for one person use --height and --mass")
            return
        for flag, pairs, lo, hi, unit in (("--person-height", self.person_heights, 0.5, 2.6, "metres"),
                                          ("--person-mass", self.person_masses, 10, 400, "kilograms")):
            ids = [pid for pid, _ in pairs]
            if len(set(ids)) < len(ids):
                raise EngineError(f"{flag} names a person twice")
            for pid, value in pairs:
                if pid < 1 or not lo <= value <= hi:
                    raise EngineError(f"{flag} takes ID=VALUE with IDs from 1 and values in {unit} "
                                      f"({lo:g}–{hi:g}), got {pid}={value:g}")
                if isinstance(spec, tuple) and pid not in spec:
                    raise EngineError(f"{flag} names person {pid}, who is not among --people {self.people}")
        if self.calib is not None:
            raise EngineError("--people follows several people in one video; with --calib the "
                              "cameras follow the largest person")
        if self.roi is not None:
            raise EngineError("--roi picks one person; it cannot be combined with --people")

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

    def check_runtime(self) -> None:
        """What this Python must have for the run: the stages' packages and the pose bundle (one
        line naming the command that makes it). Called where the engine runs."""
        if self.opensim and importlib.util.find_spec("opensim") is None:
            raise EngineError("--opensim needs the opensim package: pip install --no-deps opensim==4.6")
        if self.mesh:
            from .mesh_stage import available

            if not available():
                raise EngineError("--mesh needs the anny body model: pip install anny==0.6.2")
        from .bundles import pose_bundle

        pose_bundle(self.pose_model, self.holistic)

    @property
    def multiview(self) -> bool:
        return self.calib is not None

    @property
    def stem(self) -> str:
        return self.video.stem

    def to_json(self) -> dict:
        d = asdict(self)
        for name in ("video", "out_dir", "lifter", "calib"):
            d[name] = str(d[name]) if d[name] is not None else None
        d["views"] = [str(v) for v in self.views]
        return d

    @classmethod
    def from_json(cls, d: dict) -> RunConfig:
        """The inverse of to_json (a child process gets its config this way); unknown keys are
        an error rather than silently dropped."""
        names = {f.name for f in fields(cls)}
        extra = set(d) - names
        if extra:
            raise EngineError(f"unknown run settings: {', '.join(sorted(extra))}")
        return cls(**d)


def parse_offsets(text: str) -> tuple[int, ...]:
    """`0,3,-2` → (0, 3, -2): frames each video starts late by (spaces allowed)."""
    try:
        return tuple(int(part) for part in str(text).replace(" ", "").split(","))
    except ValueError:
        raise EngineError(f"sync offsets must be whole frame numbers like 0,3,-2, got {text!r}") from None


def parse_by_id(text: str, flag: str) -> tuple[tuple[int, float], ...]:
    """`ID=VALUE,ID=VALUE` (e.g. `1=1.80, 2=1.65`) → ((1, 1.8), (2, 1.65)); "" → ()."""
    pairs = []
    for item in filter(None, (t.strip() for t in str(text).split(","))):
        pid, _, value = item.partition("=")
        try:
            pairs.append((int(pid.strip().lstrip("#")), float(value)))
        except ValueError:
            raise EngineError(f"{flag} takes ID=VALUE,ID=VALUE (e.g. 1=1.80,2=1.65), got {text!r}") from None
    return tuple(pairs)
