"""Command line: `python -m engine run VIDEO --height M [options]` and
`python -m engine batch INPUTS... --out DIR [options]` (engine/batch.py)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

from .bundles import POSE_MODELS
from .config import RunConfig
from .errors import EngineError


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags in one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see --help)\n")
        sys.exit(2)


def _frames(text: str) -> tuple[int, int | None]:
    try:
        a, _, b = text.partition(":")
        start = int(a) if a.strip() else 0
        stop = int(b) if b.strip() else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A:B frame numbers, got {text!r}") from None
    if start < 0 or (stop is not None and stop <= start):
        raise argparse.ArgumentTypeError(f"expected 0 ≤ A < B, got {text!r}")
    return start, stop


def _roi(text: str) -> tuple[int, int, int, int]:
    try:
        vals = tuple(int(float(v)) for v in text.split(","))
    except (ValueError, OverflowError):  # "abc", "nan", "1e400"
        vals = ()
    if len(vals) != 4 or vals[2] <= 0 or vals[3] <= 0 or min(vals[:2]) < 0:
        raise argparse.ArgumentTypeError(f"expected x,y,w,h in pixels, got {text!r}")
    return vals  # type: ignore[return-value]


def _size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().replace("×", "x").partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = None
    if not sep or size is None:
        raise argparse.ArgumentTypeError(f"expected WxH in pixels such as 512x896, got {text!r}")
    return size


def _formats(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()))


def _offsets(text: str) -> tuple[int, ...]:
    from .config import parse_offsets

    try:
        return parse_offsets(text)
    except EngineError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("sync offsets ")) from None


def _by_id(flag: str):
    """An argparse type for `flag`'s ID=VALUE,ID=VALUE."""
    def parse(text: str) -> tuple[tuple[int, float], ...]:
        from .config import parse_by_id

        try:
            return parse_by_id(text, flag)
        except EngineError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag} ")) from None
    return parse


def _people(text: str) -> str:
    from .people import parse_people  # light: MediaPipe loads only when a run starts

    try:
        parse_people(text)
    except EngineError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--people ")) from None
    return text


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m engine", description="HumanPose3D engine: one video of a person → "
                "metric 3D markers (TRC) and a run record, in OUT/<video stem>/.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="process one video", description="Process one video into "
                       "OUT/<stem>/: <stem>_raw_landmarks.csv, <stem>_initial.trc (Pose2Sim's 22 "
                       "markers, metres, Y up), <stem>_markers.npz, <stem>_final.trc/.c3d (plus the 43 "
                       "LSTM-augmented markers, levelled), joint_angles/ (ISB angles: CSV, MOT, PNG) "
                       "and run.json.")
    r.add_argument("video", type=Path, nargs="+",
                   help="video file of one person (any format FFmpeg reads); with --calib, one video per "
                        "calibrated camera (results are named after the first)")
    r.add_argument("--height", type=_float, default=None, metavar="M",
                   help="subject height in metres: sets the metric scale (required without --calib; "
                        "with --calib the triangulated body is measured when it is not given)")
    r.add_argument("--calib", type=Path, default=None, metavar="FILE.toml",
                   help="calibration of the videos' cameras (Pose2Sim's TOML, OpenCV convention): "
                        "triangulate the cameras' 2D instead of a single-camera estimate")
    r.add_argument("--sync-offsets", type=_offsets, default=None, metavar="N,N,...",
                   help="with --calib: frames each video starts late by, one per video (default: "
                        "found from the motion)")
    r.add_argument("--mass", type=_float, default=70.0, metavar="KG", help="subject mass in kg (default 70)")
    r.add_argument("--out", type=Path, default=Path("output"), metavar="DIR",
                   help="output folder; results go to DIR/<video stem>/ (default: output)")
    _add_options(r)
    _add_batch(sub)
    return p


def _add_options(r: argparse.ArgumentParser) -> None:
    """The flags that apply to each video alike, shared by `run` and `batch`."""
    cam = r.add_mutually_exclusive_group()
    cam.add_argument("--fov", type=_float, default=55.0, metavar="DEG",
                     help="camera field of view across the longer image side, degrees (default 55)")
    cam.add_argument("--focal-px", type=_float, default=None, metavar="F",
                     help="camera focal length in pixels (overrides --fov)")
    r.add_argument("--frames", type=_frames, default=None, metavar="A:B",
                   help="process video frames A (inclusive) to B (exclusive), 0-based")
    r.add_argument("--roi", type=_roi, default=None, metavar="X,Y,W,H",
                   help="pick the person inside this box of the first frame (default: the largest, "
                        "most central person)")
    r.add_argument("--people", type=_people, default="largest", metavar="WHO",
                   help="whom to follow: largest (default: the largest, most central person, into "
                        "DIR/<stem>/), all, N (the N largest) or ID,ID (IDs as a run with all lists "
                        "them; one ID as #ID): each person tracked with a stable ID into "
                        "DIR/<stem>/person_<ID>/ with every output, and DIR/<stem>/run.json lists them")
    r.add_argument("--person-height", type=_by_id("--person-height"), default=(), metavar="ID=M,...",
                   help="with --people: these people's heights in metres (e.g. 1=1.80,2=1.65); the "
                        "others get --height")
    r.add_argument("--person-mass", type=_by_id("--person-mass"), default=(), metavar="ID=KG,...",
                   help="with --people: these people's masses in kilograms; the others get --mass")
    r.add_argument("--pose-model", choices=POSE_MODELS, default=None,
                   help="BlazePose landmark model: lite (fastest), full or heavy (slowest); default full "
                        "for one camera, heavy with --calib (its 2D triangulates 8-12 mm closer to the "
                        "other cameras: benchmarks/multiview.py)")
    r.add_argument("--holistic", action="store_true",
                   help="also track hands (2×21) and face (468) with MediaPipe Holistic (slower)")
    r.add_argument("--scail", action="store_true",
                   help="also write SMPL-24 poses in NLF's format for SCAIL and SCAIL's 3D pose render "
                        "(MP4 + RGBA PNGs) to DIR/<stem>/scail/; add --holistic for hands and face")
    r.add_argument("--scail-size", type=_size, default=None, metavar="WxH",
                   help="SCAIL render size (implies --scail; default 512x896, or 896x512 for a "
                        "landscape video); the camera keeps its aspect ratio and crops the centre")
    r.add_argument("--visibility-min", type=_float, default=0.3, metavar="V",
                   help="landmarks below this MediaPipe visibility are treated as missing (default 0.3)")
    r.add_argument("--max-gap", type=_float, default=0.5, metavar="S",
                   help="interpolate gaps up to this many seconds; longer gaps stay empty (default 0.5)")
    r.add_argument("--estimate-missing", action="store_true",
                   help="fill a limb missing on one side by mirroring the other side across the "
                        "body's mid-sagittal plane")
    r.add_argument("--cutoff-hz", type=_float, default=6.0, metavar="HZ",
                   help="zero-phase Butterworth low-pass cut-off, 0 to disable (default 6)")
    r.add_argument("--filter-order", type=int, default=4, metavar="N",
                   help="effective Butterworth order after the forward-backward pass (default 4)")
    r.add_argument("--free-bone-lengths", action="store_true",
                   help="do not hold the subject's bone lengths constant over time")
    r.add_argument("--no-fit", action="store_true",
                   help="skip the skeleton fit to the 2D landmarks (MediaPipe's 3D, placed and filtered)")
    r.add_argument("--no-foot-lock", action="store_true",
                   help="let the fit move planted heels and toes (by default, those standing still in "
                        "the video are held still in 3D so the feet do not slide)")
    r.add_argument("--lifter", type=Path, default=None, metavar="PATH",
                   help="VideoPose3D checkpoint (.bin with 'model_pos'): its temporal 3D lifting "
                        "replaces MediaPipe's 3D as the fit's prior; nothing is downloaded")
    r.add_argument("--lifter-layout", choices=("coco17", "h36m17"), default="coco17",
                   help="2D keypoint order the checkpoint was trained on (default coco17, as in "
                        "VideoPose3D's in-the-wild model)")
    r.add_argument("--augmentation-cycles", type=int, default=4, metavar="N",
                   help="average the LSTM marker augmenter over N headings of the subject (turned "
                        "about the vertical by k*360/N degrees and back): steadier augmented markers "
                        "for N times the augmentation time (default 4; 1 = Pose2Sim's single pass)")
    r.add_argument("--no-angles", action="store_true",
                   help="skip the ISB joint angles (CSV, MOT and PNG in DIR/<stem>/joint_angles/)")
    r.add_argument("--no-plots", action="store_true", help="write the joint angles without PNG plots")
    r.add_argument("--svg", action="store_true",
                   help="also write each joint's figure as SVG, text kept as text (the PDF report is "
                        "vector already)")
    r.add_argument("--opensim", action="store_true",
                   help="also scale Pose2Sim's OpenSim model to the subject and run inverse kinematics "
                        "on <stem>_final.trc (DIR/<stem>/opensim/; needs opensim==4.6)")
    r.add_argument("--mesh", action="store_true",
                   help="also fit the Anny body model to every frame: DIR/<stem>/mesh/<stem>_mesh.npz "
                        "in SAM 3D Body's format (needs anny==0.6.2)")
    r.add_argument("--mesh-format", type=_formats, default=(), metavar="FMT[,FMT]",
                   help="also one mesh file per frame in DIR/<stem>/mesh/frames/: obj, ply and/or glb "
                        "(implies --mesh)")
    r.add_argument("--sex", choices=("female", "male"), default=None,
                   help="the subject's sex, for the body mesh (default: fitted)")
    r.add_argument("--age", type=_float, default=None, metavar="YEARS",
                   help="the subject's age, for the body mesh (default: an adult)")
    r.add_argument("--force", action="store_true", help="replace an existing DIR/<stem>/")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--debug", action="store_true", help="show the full traceback of internal errors")


def _add_batch(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("batch", help="process many videos, one Ray task each",
                       description="Process many videos, each one Ray task, into DIR/<stem>/ as `run` "
                       "does; a video whose DIR/<stem>/run.json is complete is skipped. Writes the "
                       "summary DIR/batch.json and DIR/batch.csv. Exit 0: every video ok or skipped; "
                       "1: some failed (or nothing to do); 2: bad flags; 130: cancelled.")
    b.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="video files, folders (their videos, not recursive) and glob patterns "
                        "(quoted, e.g. 'clips/**/*.mp4')")
    b.add_argument("--manifest", type=Path, default=None, metavar="FILE.csv",
                   help="CSV with a header row: video (required; relative to the CSV's folder), height, "
                        "mass and optional per-video flags (frames, pose_model, fov, focal_px, roi, "
                        "holistic, estimate_missing, sex, age); an empty cell takes the command line's")
    b.add_argument("--height", type=_float, default=None, metavar="M",
                   help="subject height in metres for every video the manifest gives none")
    b.add_argument("--mass", type=_float, default=70.0, metavar="KG",
                   help="subject mass in kg for every video the manifest gives none (default 70)")
    b.add_argument("--out", type=Path, default=Path("output"), metavar="DIR",
                   help="output folder: DIR/<video stem>/ per video, DIR/batch.json and DIR/batch.csv "
                        "(default: output)")
    b.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="run on this Ray cluster (host:port, ray://host:port or auto) instead of a "
                        "local Ray started for the batch; its nodes need this engine and its stack")
    b.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local Ray only: videos processed at once (default: one per CPU core)")
    _add_options(b)


def config_kwargs(args: argparse.Namespace) -> dict:
    """RunConfig's fields from the flags `run` and `batch` share (all but the videos and cameras)."""
    return dict(
        height_m=args.height, mass_kg=args.mass, out_dir=args.out,
        fov_deg=args.fov, focal_px=args.focal_px, frames=args.frames, roi=args.roi,
        holistic=args.holistic,
        pose_model=args.pose_model, scail=args.scail,
        scail_size=args.scail_size, visibility_min=args.visibility_min, max_gap_s=args.max_gap,
        estimate_missing=args.estimate_missing, cutoff_hz=args.cutoff_hz,
        filter_order=args.filter_order, hold_bone_lengths=not args.free_bone_lengths,
        fit_skeleton=not args.no_fit, foot_lock=not args.no_foot_lock, lifter=args.lifter,
        lifter_layout=args.lifter_layout,
        augmentation_cycles=args.augmentation_cycles, joint_angles=not args.no_angles,
        angle_plots=not args.no_plots, angle_svg=args.svg, opensim=args.opensim, mesh=args.mesh,
        mesh_formats=args.mesh_format, sex=args.sex, age_years=args.age, force=args.force,
        people=args.people, person_heights=args.person_height, person_masses=args.person_mass)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return RunConfig(video=args.video[0], views=tuple(args.video[1:]), calib=args.calib,
                     sync_offsets=args.sync_offsets, **config_kwargs(args))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "batch":
        if args.workers is not None and args.workers < 1:
            parser.error(f"--workers must be at least 1, got {args.workers}")
        if args.workers is not None and args.ray_address:
            parser.error("--workers applies to the local Ray; a cluster's own CPUs set how many run")
        warnings.filterwarnings("ignore", r"(All-NaN|Mean of empty) slice", RuntimeWarning)
        from .batch import main_batch  # Ray is imported there, and only for a batch

        return main_batch(args.inputs, args.manifest, config_kwargs(args), ray_address=args.ray_address,
                          workers=args.workers, quiet=args.quiet, debug=args.debug)
    if args.height is None and args.calib is None:
        parser.error("the following arguments are required: --height")
    cancel = threading.Event()
    # NaN marks unknown samples throughout the engine (a limb never seen, a person who left the
    # frame): numpy's all-NaN warnings are expected there, and not for the user's terminal.
    warnings.filterwarnings("ignore", r"(All-NaN|Mean of empty) slice", RuntimeWarning)

    from .mediapipe_tasks import silence_native_stderr_for_good  # light: mediapipe loads lazily
    from .service import EXIT_INTERNAL, ending, execute

    def on_signal(signum, frame) -> None:  # noqa: ARG001
        cancel.set()
        if not err_fd:  # MediaPipe is torn down from here on: its native logs would join our line
            err_fd.append(silence_native_stderr_for_good())
        raise KeyboardInterrupt

    err_fd: list[int] = []
    handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    bar = _Bar(args.quiet)
    try:
        try:
            end = execute(config_from_args(args), bar.show, cancel)
        except (KeyboardInterrupt, EngineError) as exc:  # a late signal; a bad value in the settings
            end = ending(exc)
        bar.close(keep=end.kind == "done")
        if end.kind == "done":
            print(f"{end.out_dir}  ({end.frames} frames, detection {100 * end.detection_rate:.1f} %, "
                  f"{end.seconds:.1f} s)")
            return 0
        line = f"error: {end.message}\n"
        if end.code == EXIT_INTERNAL:  # a bug: one line for the user, the traceback on request
            if args.debug or os.environ.get("HP3D_DEBUG"):
                sys.stderr.write(end.details)
            line = f"error: {end.message}; rerun with --debug for details\n"
        if err_fd:  # fd 2 is silenced: the real stderr, past what is left of the bar on a terminal
            os.write(err_fd[0], (("\r\x1b[K" if os.isatty(err_fd[0]) else "") + line).encode())
        else:
            sys.stderr.write(line)
        return end.code
    finally:
        bar.close(keep=False)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


class _Bar:
    """The CLI's progress bar over a run's events. Created at the first event, once the video has
    opened, so that bad input gets just its one error line; tqdm turns itself off when stderr is
    not a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar = quiet, None

    def show(self, event) -> None:
        if event.kind != "progress":
            return
        if self.bar is None and not self.quiet:
            from tqdm import tqdm
            self.bar = tqdm(total=1000, unit="‰", desc="starting", file=sys.stderr, disable=None,
                            bar_format="{desc:<22} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        if self.bar is not None:
            self.bar.set_description_str(event.message, refresh=False)
            self.bar.update(int(event.fraction * 1000) - self.bar.n)

    def close(self, keep: bool) -> None:
        """Close the bar; an unfinished one is wiped so the error line is all that stays."""
        if self.bar is not None:
            self.bar.leave = keep
            self.bar.close()
            self.bar = None
