"""Which bones of a target armature play which of our bones: a bone map, detected from names and,
failing those, from the skeleton's shape; checked, and saved and loaded as a JSON preset.

A map sends each of our bones (scene/skeleton's 18, and 30 finger bones: the "slots") to a chain of
the target's bones, first to last (Rigify's DEF-upper_arm.L and DEF-upper_arm.L.001, Mixamo's
Spine, Spine1 and Spine2, Anny's upperarm01.L and upperarm02.L): the retarget turns the whole chain
as one piece so that the slot's joints line up. Bones that no slot names (toes, face, twist helpers
that hang off a chain, and the fingers when our result tracked no hands) keep their rest pose
relative to their parent: they are left alone.

Detection, in order (the first that maps every required slot wins):
- a generated Rigify rig: its FK controls (torso, chest, neck, head, shoulder.L, upper_arm_fk.L, ...)
  — an animator works on the controls, and the DEF-/ORG- bones follow them by constraints, so keys on
  those would do nothing;
- Rigify deform/original/metarig names (DEF-, ORG- or no prefix: spine, spine.001 ... thigh.L);
- Mixamo (`mixamorig:Hips` ..., any `<prefix>:` or none);
- Anny's rig (root, spine05 ... upperarm01.L, lowerleg02.L ...);
- this add-on's own armature (pelvis, spine, upper_arm.L ...);
- common names, matched by words with left/right from `.L`/`_l`/`Left`/`l_` markers (UpperArm.L,
  upperarm_l, LeftArm, thigh_r, calf_l, clavicle_l, spine_01 ...);
- topology: hips = where the two lowest leaf chains (the feet) meet, chest = where the two most
  lateral ones (the hands) meet, the neck/head chain the one going up from there; joints along each
  limb by their heights and distances; left/right by the sign of x (the rig faces -Y as Blender's
  front view, or its own front, read from the hips and spine); the fingers from the five leaf
  chains under each hand (_topology_fingers).
Finger rows are optional: a scheme that names no fingers still wins on the body.

Pure Python and numpy (no bpy), so the maps and presets are testable without Blender.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .skeleton import BONE_NAMES, FINGER_NAMES, FINGERS

# Our body's 18 bones, then the fingers' 30 (three a finger: scene/skeleton.FINGERS), which move a
# target's fingers only where our result tracked the hand (a --holistic run).
SLOTS: tuple[str, ...] = BONE_NAMES + FINGER_NAMES
REQUIRED: tuple[str, ...] = ("pelvis", "spine", "thigh.L", "shin.L", "thigh.R", "shin.R", "upper_arm.L",
                             "forearm.L", "upper_arm.R", "forearm.R")
PRESET_FORMAT = "humanpose3d-bone-map"

BoneMap = dict[str, list[str]]


@dataclass(frozen=True)
class RigBone:
    """One bone of the target at rest: head and tail in world space (metres), its parent's name."""

    name: str
    parent: str | None
    head: np.ndarray
    tail: np.ndarray


class BoneMapError(ValueError):
    """A map that cannot drive the target (missing required bones, names not in the rig)."""


def _finger_rows(names: dict[str, str], pattern: str) -> dict[str, list[str]]:
    """`{finger}.0{k}.{S}` slots → one bone each, named by `pattern` with {name} (the rig's word for
    the finger, from `names`), {k} (1-3) and the side placeholders."""
    return {f"{finger}.0{k}.{{S}}": [pattern.format(name=names[finger], k=k, S="{S}", Side="{Side}", s="{s}")]
            for finger, _ in FINGERS for k in (1, 2, 3)}


_SAME = {finger: finger for finger, _ in FINGERS}


def _sided(table: dict[str, list[str]]) -> dict[str, list[str]]:
    """Expand `{S}`/`{Side}`/`{s}` placeholders into .L and .R slots."""
    out: dict[str, list[str]] = {}
    for slot, chain in table.items():
        if "{S}" not in slot:
            out[slot] = chain
            continue
        for S, Side, s in (("L", "Left", "l"), ("R", "Right", "r")):
            out[slot.format(S=S)] = [b.format(S=S, Side=Side, s=s) for b in chain]
    return out


RIGIFY_CONTROLS = _sided({
    "pelvis": ["torso"], "spine": ["chest"], "neck": ["neck"], "head": ["head"],
    "shoulder.{S}": ["shoulder.{S}"], "upper_arm.{S}": ["upper_arm_fk.{S}"],
    "forearm.{S}": ["forearm_fk.{S}"], "hand.{S}": ["hand_fk.{S}"], "thigh.{S}": ["thigh_fk.{S}"],
    "shin.{S}": ["shin_fk.{S}"], "foot.{S}": ["foot_fk.{S}"],
    **_finger_rows(_SAME, "{name}.0{k}.{S}"),  # the FK finger controls share the metarig's names
})
# Rigify's bones that switch a limb between IK (0) and FK (1), with the property's name.
RIGIFY_IK_FK = tuple(f"{limb}_parent.{S}" for limb in ("thigh", "upper_arm") for S in "LR")

_RIGIFY_DEFORM = _sided({
    "pelvis": ["spine"], "spine": ["spine.001", "spine.002", "spine.003"], "neck": ["spine.004", "spine.005"],
    "head": ["spine.006"], "shoulder.{S}": ["shoulder.{S}"],
    "upper_arm.{S}": ["upper_arm.{S}", "upper_arm.{S}.001"],
    "forearm.{S}": ["forearm.{S}", "forearm.{S}.001"],
    "hand.{S}": ["hand.{S}"], "thigh.{S}": ["thigh.{S}", "thigh.{S}.001"],
    "shin.{S}": ["shin.{S}", "shin.{S}.001"], "foot.{S}": ["foot.{S}"],
    **_finger_rows(_SAME, "{name}.0{k}.{S}"),
})
_MIXAMO = _sided({
    "pelvis": ["Hips"], "spine": ["Spine", "Spine1", "Spine2"], "neck": ["Neck"], "head": ["Head"],
    "shoulder.{S}": ["{Side}Shoulder"], "upper_arm.{S}": ["{Side}Arm"], "forearm.{S}": ["{Side}ForeArm"],
    "hand.{S}": ["{Side}Hand"], "thigh.{S}": ["{Side}UpLeg"], "shin.{S}": ["{Side}Leg"],
    "foot.{S}": ["{Side}Foot"],
    **_finger_rows({"thumb": "Thumb", "f_index": "Index", "f_middle": "Middle", "f_ring": "Ring",
                    "f_pinky": "Pinky"}, "{Side}Hand{name}{k}"),
})
ANNY = _sided({
    "pelvis": ["root"], "spine": ["spine05", "spine04", "spine03", "spine02", "spine01"],
    "neck": ["neck01", "neck02", "neck03"], "head": ["head"],
    "shoulder.{S}": ["clavicle.{S}", "shoulder01.{S}"], "upper_arm.{S}": ["upperarm01.{S}", "upperarm02.{S}"],
    "forearm.{S}": ["lowerarm01.{S}", "lowerarm02.{S}"], "hand.{S}": ["wrist.{S}"],
    "thigh.{S}": ["upperleg01.{S}", "upperleg02.{S}"], "shin.{S}": ["lowerleg01.{S}", "lowerleg02.{S}"],
    "foot.{S}": ["foot.{S}"],
    # MakeHuman's hand: finger1 is the thumb (finger1-1 its metacarpal), finger2-5 index to little.
    **_finger_rows({"thumb": "1", "f_index": "2", "f_middle": "3", "f_ring": "4", "f_pinky": "5"},
                   "finger{name}-{k}.{S}"),
})
HP3D = {slot: [slot] for slot in SLOTS}


def _table_map(names: set[str], table: dict[str, list[str]], prefix: str = "") -> BoneMap:
    out = {}
    for slot, chain in table.items():
        present = [prefix + b for b in chain if prefix + b in names]
        if present:
            out[slot] = present
    return out


def _mixamo_prefix(names: set[str]) -> str | None:
    for n in names:
        if n == "Hips" or (n.endswith(":Hips")):
            return n[:-4]
    return None


# Words of common naming schemes, matched on a bone name split into lower-case words with the side
# marker removed. The first slot whose pattern matches wins, so more specific words come first.
_WORDS: tuple[tuple[str, str], ...] = (
    ("forearm", r"^(fore ?arm|lower ?arm|elbow|lowerarm\d*)$"),
    ("upper_arm", r"^(upper ?arm|arm|humerus|upperarm\d*)$"),
    ("shoulder", r"^(shoulder|clavicle|collar ?bone|collar)$"),
    ("hand", r"^(hand|wrist)$"),
    ("thigh", r"^(thigh|up ?leg|upper ?leg|femur|upperleg\d*)$"),
    ("shin", r"^(shin|calf|leg|lower ?leg|knee|lowerleg\d*)$"),
    ("foot", r"^(foot|ankle)$"),
    ("pelvis", r"^(hips?|pelvis)$"),
    ("spine", r"^(spine ?\d*|chest|upper ?chest|torso|back)$"),
    ("neck", r"^(neck ?\d*)$"),
    ("head", r"^(head)$"),
)
# Fingers: thumb_01_l (Unreal), LeftHandIndex1 (Mixamo words), index2.L, finger_ring_3_R ...
_FINGER_WORDS = re.compile(
    r"^(hand ?|finger ?)?(thumb|index|middle|ring|pinky|pinkie|little)( finger)? ?0?([123])$")
_FINGER_SLOT = {"thumb": "thumb", "index": "f_index", "middle": "f_middle", "ring": "f_ring",
                "pinky": "f_pinky", "pinkie": "f_pinky", "little": "f_pinky"}
_SIDE = tuple((re.compile(rf"[._\s-]({w})$|^({w})[._\s-]|^{W}(?=[A-Z0-9])"), side)
              for w, W, side in (("l|L|left|Left|LEFT", "Left", "L"),
                                 ("r|R|right|Right|RIGHT", "Right", "R")))
_NOISE = re.compile(r"^(mixamorig\d*:|bip\d*|def-|org-|mch-|b-|jnt_|bn_|cc_base_|rig_)", re.I)


def split_side(name: str) -> tuple[str, str | None]:
    """(the name without its side marker and prefixes, "L"/"R"/None)."""
    core = name.split(":")[-1]
    core = _NOISE.sub("", core).strip()
    side = None
    for pattern, s in _SIDE:
        m = pattern.search(core)
        if m:
            core = (core[:m.start()] + core[m.end():]).strip("._- ")
            side = s
            break
    core = re.sub(r"([a-z])([A-Z])", r"\1 \2", core).lower()
    core = re.sub(r"[._\-]+", " ", core).strip()
    core = re.sub(r"(\D) (\d+)$", r"\1\2", core)
    return core, side


def _common_map(bones: dict[str, RigBone]) -> BoneMap:
    out: dict[str, list[str]] = {}
    for name in _hierarchy_order(bones):
        core, side = split_side(name)
        for slot, pattern in _WORDS:
            if re.match(pattern, core) or re.match(pattern, core.replace(" ", "")):
                sided = slot in ("shoulder", "upper_arm", "forearm", "hand", "thigh", "shin", "foot")
                if sided != (side is not None):
                    continue
                key = f"{slot}.{side}" if sided else slot
                out.setdefault(key, []).append(name)
                break
        finger = _FINGER_WORDS.match(core)
        if finger and side is not None:  # one bone per finger slot: the first by that name
            slot = f"{_FINGER_SLOT[finger.group(2)]}.0{finger.group(4)}.{side}"
            out.setdefault(slot, [name])
    # A chain is bones in one line of descent; keep each slot's first run (twist helpers elsewhere drop).
    for slot, chain in out.items():
        run = [chain[0]]
        for b in chain[1:]:
            if bones[b].parent == run[-1]:
                run.append(b)
        out[slot] = run
    return out


def _hierarchy_order(bones: dict[str, RigBone]) -> list[str]:
    depth: dict[str, int] = {}

    def d(n: str) -> int:
        if n not in depth:
            p = bones[n].parent
            depth[n] = 0 if p is None or p not in bones else d(p) + 1
        return depth[n]

    return sorted(bones, key=lambda n: (d(n), list(bones).index(n)))


# --- topology ---------------------------------------------------------------------------------------

def _path(bones: dict[str, RigBone], top: str, leaf: str) -> list[str]:
    """Bones from `top` (exclusive) down to `leaf` (inclusive)."""
    out = []
    b: str | None = leaf
    while b is not None and b != top:
        out.append(b)
        b = bones[b].parent
    return out[::-1] if b == top else []


def _ancestors(bones: dict[str, RigBone], b: str) -> list[str]:
    out = [b]
    while bones[out[-1]].parent in bones:
        out.append(bones[out[-1]].parent)
    return out


def _lca(bones: dict[str, RigBone], a: str, b: str) -> str | None:
    anc = set(_ancestors(bones, a))
    return next((x for x in _ancestors(bones, b) if x in anc), None)


def _split_chain(bones: dict[str, RigBone], path: list[str], joints: list[np.ndarray]) -> list[list[str]]:
    """Cut `path` into consecutive chains at the bones whose heads lie nearest each joint."""
    heads = np.array([bones[b].head for b in path])
    cuts = [int(np.argmin(np.linalg.norm(heads - j, axis=1))) for j in joints]
    cuts = sorted(set(cuts))
    return [path[a:b] for a, b in zip(cuts, cuts[1:] + [len(path)]) if b > a]


def topology_map(bones: dict[str, RigBone], up: np.ndarray | None = None) -> BoneMap:
    """A map from the skeleton's shape alone (see the module doc); {} when it does not look human."""
    up = np.array([0, 0, 1.0]) if up is None else np.asarray(up, float)
    names = list(bones)
    children = {n: [c for c in names if bones[c].parent == n] for n in names}
    leaves = [n for n in names if not children[n]]
    if len(leaves) < 5:
        return {}
    tip = {n: bones[n].tail for n in leaves}
    z = {n: float(tip[n] @ up) for n in leaves}
    allpts = np.array([p for b in bones.values() for p in (b.head, b.tail)])
    centre = allpts.mean(0)
    height = float((allpts @ up).max() - (allpts @ up).min())
    # The sideways axis: the direction of greatest spread perpendicular to up (arms, then hips).
    flat = allpts - np.outer(allpts @ up, up)
    flat = flat - flat.mean(0)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    side_axis = vt[0] - (vt[0] @ up) * up
    side_axis /= np.linalg.norm(side_axis)
    if side_axis @ np.array([1.0, 0, 0]) < 0:
        side_axis = -side_axis
    x = {n: float((tip[n] - centre) @ side_axis) for n in leaves}
    feet = sorted(leaves, key=lambda n: z[n])
    foot_l = next((n for n in feet if x[n] > 0.02 * height), None)
    foot_r = next((n for n in feet if x[n] < -0.02 * height), None)
    hands_l = sorted((n for n in leaves if x[n] > 0), key=lambda n: -x[n])
    hands_r = sorted((n for n in leaves if x[n] < 0), key=lambda n: x[n])
    if not (foot_l and foot_r and hands_l and hands_r):
        return {}
    hips = _lca(bones, foot_l, foot_r)
    chest = _lca(bones, hands_l[0], hands_r[0])
    if hips is None or chest is None or hips not in _ancestors(bones, chest) or hips == chest:
        return {}
    out: BoneMap = {"pelvis": [hips]}
    spine = _path(bones, hips, chest)
    out["spine"] = spine
    # Head: the highest leaf under the chest that is on neither arm.
    arm_l, arm_r = _path(bones, chest, hands_l[0]), _path(bones, chest, hands_r[0])
    others = [n for n in leaves if chest in _ancestors(bones, n) and n not in arm_l and n not in arm_r
              and n != chest]
    if others:
        top = max(others, key=lambda n: z[n])
        neck_head = _path(bones, chest, top)
        lengths = [float(np.linalg.norm(bones[b].tail - bones[b].head)) for b in neck_head]
        if len(neck_head) >= 3 and lengths[-1] < lengths[-2]:  # a short end bone above the head
            out["neck"], out["head"] = neck_head[:-2], neck_head[-2:-1]
        elif len(neck_head) >= 2:
            out["neck"], out["head"] = neck_head[:-1], neck_head[-1:]
        elif neck_head:
            out["head"] = neck_head
    for S, foot, arm in (("L", foot_l, arm_l), ("R", foot_r, arm_r)):
        leg = _path(bones, hips, foot)
        if len(leg) >= 3:
            heads = np.array([bones[b].head for b in leg])
            hz = heads @ up
            floor = float(tip[foot] @ up)
            ankle_i = max(i for i in range(len(leg)) if hz[i] > floor + 0.035 * height) \
                if (hz > floor + 0.035 * height).any() else len(leg) - 1
            hip_i = 0
            while hip_i + 1 < ankle_i and np.linalg.norm(heads[hip_i + 1] - heads[hip_i]) < 0.02 * height:
                hip_i += 1  # a pelvis bone at the hips' own centre, then the hip joint
            if abs((heads[hip_i] - bones[hips].head) @ side_axis) < 0.02 * height and hip_i + 1 < ankle_i:
                hip_i += 1
            mid = 0.5 * (hz[hip_i] + hz[ankle_i])
            knee_i = min(range(hip_i + 1, ankle_i), key=lambda i: abs(hz[i] - mid), default=None)
            if knee_i is not None:
                out[f"thigh.{S}"] = leg[hip_i:knee_i]
                out[f"shin.{S}"] = leg[knee_i:ankle_i]
                out[f"foot.{S}"] = [leg[ankle_i]]
        if len(arm) >= 3:
            heads = np.array([bones[b].head for b in arm])
            lateral = np.abs((heads - bones[chest].tail) @ side_axis)
            # Shoulder joint: the first head at least 9 % of the height out from the chest's centre.
            sh = next((i for i in range(len(arm)) if lateral[i] > 0.09 * height), None)
            if sh is None or sh + 2 >= len(arm):
                continue
            reach = np.linalg.norm(heads - heads[sh], axis=1)
            # Wrist at ~0.3 of the height from the shoulder joint along the arm, elbow halfway.
            wr = min(range(sh + 2, len(arm)), key=lambda i: abs(reach[i] - 0.30 * height))
            el = min(range(sh + 1, wr), key=lambda i: abs(reach[i] - 0.5 * reach[wr]))
            if sh > 0:
                out[f"shoulder.{S}"] = arm[:sh]
            out[f"upper_arm.{S}"] = arm[sh:el]
            out[f"forearm.{S}"] = arm[el:wr]
            out[f"hand.{S}"] = [arm[wr]]
            out |= _topology_fingers(bones, children, arm[wr], S, -np.cross(up, side_axis))
    return out


def _topology_fingers(bones: dict[str, RigBone], children: dict[str, list[str]], hand: str, S: str,
                      forward: np.ndarray) -> BoneMap:
    """Finger rows from the five leaf chains under `hand`, or {} when there are not five. The
    thumb is the shortest reach from the wrist (the most forward one among equals) and takes its
    chain's first three bones, its metacarpal first as ours. A finger skips a leading metacarpal
    (a first bone starting under 40 % of the way from the wrist to the fingertip: 19-30 % on
    Anny's hand, the knuckles 59-69 %) and takes the next three; index to little finger are then
    ordered by how far their knuckles lie from the thumb's base."""
    stack, leaves = list(children[hand]), []
    while stack:
        b = stack.pop()
        stack.extend(children[b])
        if not children[b]:
            leaves.append(b)
    if len(leaves) != 5:
        return {}
    wrist = bones[hand].head
    chains = [_path(bones, hand, leaf) for leaf in leaves]
    reach = [float(np.linalg.norm(bones[c[-1]].tail - wrist)) for c in chains]
    thumb = min(range(5), key=lambda i: (round(reach[i], 3), -float(bones[chains[i][-1]].tail @ forward)))
    fingers = []
    for i, chain in enumerate(chains):
        if i == thumb:
            continue
        if len(chain) > 3 and np.linalg.norm(bones[chain[0]].head - wrist) < 0.4 * reach[i]:
            chain = chain[1:]
        fingers.append(chain)
    base = bones[chains[thumb][0]].head
    fingers.sort(key=lambda c: float(np.linalg.norm(bones[c[0]].head - base)))
    out: BoneMap = {}
    for (finger, _), chain in zip(FINGERS, [chains[thumb], *fingers]):
        if len(chain) < 3:
            return {}
        out |= {f"{finger}.0{i + 1}.{S}": [chain[i]] for i in range(3)}
    return out


# --- detection and checks ---------------------------------------------------------------------------

def _name_maps(bones: dict[str, RigBone]) -> list[tuple[str, BoneMap]]:
    names = set(bones)
    out: list[tuple[str, BoneMap]] = []
    if "torso" in names and any(n.startswith("ORG-") for n in names):
        out.append(("rigify", _table_map(names, RIGIFY_CONTROLS)))
    for prefix in ("DEF-", "ORG-", ""):
        out.append((f"rigify {prefix or 'metarig'}".strip(), _table_map(names, _RIGIFY_DEFORM, prefix)))
    prefix = _mixamo_prefix(names)
    if prefix is not None:
        out.append(("mixamo", _table_map(names, _MIXAMO, prefix)))
    out.append(("anny", _table_map(names, ANNY)))
    out.append(("humanpose3d", _table_map(names, HP3D)))
    out.append(("names", _common_map(bones)))
    return out


def missing_required(bone_map: BoneMap) -> list[str]:
    return [s for s in REQUIRED if not bone_map.get(s)]


def detect(bones: dict[str, RigBone], up: np.ndarray | None = None) -> tuple[str, BoneMap]:
    """(how it was found, the map) for the target's bones; ("", best partial map) when no scheme
    maps every required slot."""
    best: tuple[str, BoneMap] = ("", {})
    for kind, m in [*_name_maps(bones), ("topology", {})]:
        if kind == "topology":
            m = topology_map(bones, up)
        if not missing_required(m):
            return kind, m
        if len(m) > len(best[1]):
            best = ("", m)
    return best


def check(bone_map: BoneMap, bones: dict[str, RigBone]) -> None:
    """Raise BoneMapError unless `bone_map` can drive `bones`: every required slot mapped, every
    named bone in the rig, no bone in two slots, and each chain one line of descent."""
    unknown = sorted({s for s in bone_map if s not in SLOTS})
    if unknown:
        raise BoneMapError(f"the bone map names unknown bones of ours: {', '.join(unknown)}")
    missing = missing_required(bone_map)
    if missing:
        raise BoneMapError(f"the bone map lacks required bones: {', '.join(missing)} (not a humanoid rig, "
                           "or name them in the bone map)")
    seen: dict[str, str] = {}
    for slot, chain in bone_map.items():
        for b in chain:
            if b not in bones:
                raise BoneMapError(f"bone '{b}' (for {slot}) is not in the armature")
            if b in seen:
                raise BoneMapError(f"bone '{b}' is mapped twice ({seen[b]} and {slot})")
            seen[b] = slot
        for a, b in zip(chain, chain[1:]):
            if a not in _ancestors(bones, b):
                raise BoneMapError(f"{slot}: '{b}' does not descend from '{a}'")


# --- presets ----------------------------------------------------------------------------------------

def to_json(bone_map: BoneMap, name: str = "") -> str:
    ordered = {s: list(bone_map[s]) for s in SLOTS if bone_map.get(s)}
    return json.dumps({"format": PRESET_FORMAT, "version": 1, "name": name, "bones": ordered}, indent=2)


def from_json(text: str) -> BoneMap:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BoneMapError(f"not a bone map preset: {exc}") from None
    ok = isinstance(data, dict) and data.get("format") == PRESET_FORMAT
    ok = ok and isinstance(data.get("bones"), dict)
    if not ok:
        raise BoneMapError(f"not a bone map preset (no \"format\": \"{PRESET_FORMAT}\" with \"bones\")")
    out: BoneMap = {}
    for slot, chain in data["bones"].items():
        if isinstance(chain, str):
            chain = [chain]
        if not isinstance(chain, list) or not all(isinstance(b, str) for b in chain):
            raise BoneMapError(f"preset bones for {slot} must be a list of names")
        if chain:
            out[str(slot)] = list(chain)
    return out


def preset_name(name: str) -> str:
    """A safe file stem for a preset name."""
    return re.sub(r"[^\w.-]+", "_", name.strip()).strip("._") or "bone_map"


def save_preset(folder: Path, name: str, bone_map: BoneMap) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{preset_name(name)}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(to_json(bone_map, name))
    tmp.replace(path)
    return path


def load_preset(path: Path) -> BoneMap:
    return from_json(Path(path).read_text())


def list_presets(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.is_dir() else []
