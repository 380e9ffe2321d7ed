"""Bulk keyframing: `keyframe_points.add(n)` + `foreach_set("co", …)` per F-curve, which is two
orders of magnitude faster than a Python loop of `keyframe_insert` (see benchmarks/keyframes.py).

Works with Blender 4.2–4.3 (F-curves live on `action.fcurves`) and 4.4+/5.x (slotted actions:
F-curves live in a channelbag of the action's layer strip, one per slot; `action.fcurves` is gone
in 5.0).
"""

from __future__ import annotations

import bpy
import numpy as np

try:  # 4.4+: slotted actions
    from bpy_extras.anim_utils import action_ensure_channelbag_for_slot
except ImportError:  # 4.2, 4.3
    action_ensure_channelbag_for_slot = None


def ensure_action(obj: bpy.types.Object, name: str) -> bpy.types.Action:
    """A fresh action assigned to `obj` (with its own slot where slots exist); the one it replaces
    is deleted unless something else still uses it."""
    action = bpy.data.actions.new(name)
    ad = obj.animation_data or obj.animation_data_create()
    old = ad.action
    ad.action = action
    if old is not None and old.users == 0:
        bpy.data.actions.remove(old)
        action.name = name
    if action_ensure_channelbag_for_slot is not None and ad.action_slot is None:
        ad.action_slot = action.slots.new(obj.id_type, obj.name)
    return action


def put_back(idblock, old: bpy.types.Action | None, old_slot, old_fake: bool,
             new: bpy.types.Action | None) -> None:
    """Undo `ensure_action` on `idblock` (an object or a shape-key block): its previous action
    `old` (and slot, 4.4+) back, the `new` one removed, the old one's fake user as it was."""
    if new is not None:
        idblock.animation_data.action = old
        if old_slot is not None and old is not None:
            idblock.animation_data.action_slot = old_slot
        bpy.data.actions.remove(new)
    if old is not None:
        old.use_fake_user = old_fake


def fcurve_collection(obj: bpy.types.Object):
    """Where the F-curves of `obj`'s action live (an ActionFCurves or ActionChannelbagFCurves)."""
    ad = obj.animation_data
    if action_ensure_channelbag_for_slot is not None:
        return action_ensure_channelbag_for_slot(ad.action, ad.action_slot).fcurves
    return ad.action.fcurves


def _new_fcurve(fcurves, data_path: str, index: int, group: str) -> bpy.types.FCurve:
    old = fcurves.find(data_path, index=index)
    if old is not None:
        fcurves.remove(old)
    if action_ensure_channelbag_for_slot is not None:
        return fcurves.new(data_path, index=index, group_name=group)
    return fcurves.new(data_path, index=index, action_group=group)


def write_channel(fcurves, data_path: str, index: int, frames: np.ndarray, values: np.ndarray,
                  group: str = "") -> bpy.types.FCurve | None:
    """Replace the F-curve `data_path[index]` with keys at `frames` (NaN values are skipped)."""
    frames = np.asarray(frames, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values) & np.isfinite(frames)
    n = int(ok.sum())
    if n == 0:
        return None
    fc = _new_fcurve(fcurves, data_path, index, group)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames[ok]
    co[1::2] = values[ok]
    fc.keyframe_points.add(n)
    fc.keyframe_points.foreach_set("co", co)
    fc.update()  # sorts keys and computes the Bézier handles
    return fc


def write_vector(fcurves, data_path: str, frames: np.ndarray, values: np.ndarray,
                 group: str = "") -> list[bpy.types.FCurve]:
    """One F-curve per component of `values` (T, N); a frame missing any component is skipped on
    all, so the vector never mixes keyed and interpolated components."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values).all(-1)
    values = np.where(ok[:, None], values, np.nan)
    out = []
    for i in range(values.shape[1]):
        fc = write_channel(fcurves, data_path, i, frames, values[:, i], group)
        if fc is not None:
            out.append(fc)
    return out
