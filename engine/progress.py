"""One progress protocol for a run: every stage reports its own fraction (0 → 1) and a message;
the share of the whole bar each stage gets is set here, once.

The weights are the stages' typical share of a run's time on the demo (2-core machine, 100 frames
at 1080x1920: pose 2-3 s per video, reconstruction and writing 0.1 s, SCAIL's render 1-2 s, the
biomechanics stage with its figures 2-3 s, the body mesh about as long as all the rest), rounded:
a bar that moves evenly matters more than exact shares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import RunConfig

ProgressFn = Callable[[float, str], None]

WEIGHTS: dict[str, float] = {"pose": 0.85, "reconstruct": 0.05, "scail": 0.04, "biomechanics": 0.06,
                             "mesh": 1.0}


def stages(cfg: RunConfig) -> list[str]:
    """The stages a run of `cfg` goes through, in order."""
    return ["pose", "reconstruct"] + ["scail"] * cfg.scail + ["biomechanics"] + ["mesh"] * cfg.mesh


class Progress:
    """Maps each stage's own 0 → 1 onto its span of the whole bar, in the order given."""

    def __init__(self, report: ProgressFn | None, stages: Sequence[str]) -> None:
        self._report = report or (lambda f, m: None)
        total = sum(WEIGHTS[s] for s in stages)
        self._spans: dict[str, tuple[float, float]] = {}
        start = 0.0
        for s in stages:
            share = WEIGHTS[s] / total
            self._spans[s] = (start, share)
            start += share

    def stage(self, name: str) -> ProgressFn:
        """The callback for stage `name`: it reports fractions of that stage (clamped to 0-1)."""
        start, share = self._spans[name]
        return lambda f, m: self._report(start + share * min(max(f, 0.0), 1.0), m)

    def stage_at(self, fraction: float) -> str:
        """The stage whose span holds `fraction` of the whole bar (the last one from 1 on)."""
        name = next(iter(self._spans))
        for s, (start, _) in self._spans.items():
            if fraction >= start:
                name = s
        return name

    def done(self) -> None:
        self._report(1.0, "done")
