"""VideoPose3D lifter: checkpoints in the official format are made here with random weights (nothing
is downloaded) and loaded back through `load_lifter`'s shape inference."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.errors import EngineError  # noqa: E402
from engine.joint_sets import H36M_17, MEDIAPIPE_33, MP, MP_TO_COCO17, mediapipe_to_h36m  # noqa: E402
from engine.lifter import (  # noqa: E402
    H36M_TO_MP,
    TemporalModel,
    convert_layout,
    lifted_to_mediapipe,
    load_lifter,
    mirror_permutation,
    normalize_screen_coordinates,
)

W, H = 1080, 1920
REPO = Path(__file__).resolve().parents[1]


def make_model(widths=(3, 3, 3), channels=16, causal=False, joints_in=17, features=2, joints_out=17, seed=0):
    torch.manual_seed(seed)
    model = TemporalModel(joints_in, features, joints_out, list(widths), causal=causal, channels=channels)
    with torch.no_grad():  # trained-looking BatchNorm statistics, so eval differs from train mode
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(1000)
    return model


def save_official(path: Path, model) -> Path:
    """The dict VideoPose3D's run.py writes every checkpoint_frequency epochs."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    torch.save({
        "epoch": 80,
        "lr": 1e-3 * 0.95 ** 80,
        "random_state": np.random.RandomState(1234).get_state(),
        "optimizer": optimizer.state_dict(),
        "model_pos": model.state_dict(),
        "model_traj": None,
        "random_state_semi": None,
    }, path)
    return path


@pytest.fixture(scope="module")
def ckpt27(tmp_path_factory) -> Path:
    return save_official(tmp_path_factory.mktemp("vp3d") / "epoch_80.bin", make_model())


@pytest.fixture(scope="module")
def lifter27(ckpt27):
    return load_lifter(ckpt27, device="cpu")


def track(frames: int, joints: int = 17, seed: int = 1) -> np.ndarray:
    """A smooth random 2D track in pixels."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([200, 300], [900, 1600], size=(joints, 2))
    wobble = np.cumsum(rng.normal(0, 3, size=(frames, joints, 2)), axis=0)
    return base + wobble


def test_import_does_not_load_torch():
    code = "import sys, engine.lifter; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


@pytest.mark.parametrize("widths, rf", [([3, 3, 3], 27), ([3, 3, 3, 3], 81), ([3, 3, 3, 3, 3], 243),
                                         ([1], 1), ([5, 3], 15)])
def test_receptive_field(widths, rf):
    assert TemporalModel(17, 2, 17, widths, channels=4).receptive_field() == rf
    assert TemporalModel(17, 2, 17, widths, causal=True, channels=4).receptive_field() == rf


@pytest.mark.parametrize("widths, channels", [([3, 3, 3], 16), ([3, 3, 3, 3, 3], 24), ([5, 3], 8)])
def test_load_infers_architecture(tmp_path, widths, channels):
    model = make_model(widths, channels)
    lifter = load_lifter(save_official(tmp_path / "c.bin", model), device="auto")
    assert lifter.model.filter_widths == widths and lifter.model.channels == channels
    assert lifter.receptive_field == model.receptive_field()
    assert lifter.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert not lifter.model.training
    for k, v in model.state_dict().items():
        assert torch.equal(lifter.model.state_dict()[k].cpu(), v)


@pytest.mark.parametrize("frames", [1, 10, 300])
def test_output_shape_and_root(lifter27, frames):
    out = lifter27.lift(track(frames), W, H, layout="coco17")
    assert out.shape == (frames, 17, 3)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, 0], 0.0)


def test_official_243_frame_size(tmp_path):
    """The released architecture: filter widths 3,3,3,3,3 and 1024 channels."""
    lifter = load_lifter(save_official(tmp_path / "big.bin", make_model([3, 3, 3, 3, 3], 1024)), "cpu")
    assert lifter.receptive_field == 243
    assert lifter.lift(track(5), W, H, flip=False).shape == (5, 17, 3)


def test_padding_and_normalisation_match_videopose3d(lifter27):
    """Edge-pad (rf-1)/2 frames each side of the normalised track, one forward pass, as run.py does."""
    kp = track(12)
    pad = (lifter27.receptive_field - 1) // 2
    x = np.pad(normalize_screen_coordinates(kp, W, H), ((pad, pad), (0, 0), (0, 0)), mode="edge")
    with torch.no_grad():
        ref = lifter27.model(torch.from_numpy(x[None]).float())[0].numpy()
    np.testing.assert_allclose(lifter27.lift(kp, W, H, flip=False), ref - ref[:, :1], atol=1e-5)


def test_normalisation_keeps_aspect():
    xy = np.array([[0.0, 0.0], [W, H], [W / 2, H / 2]])
    np.testing.assert_allclose(normalize_screen_coordinates(xy, W, H), [[-1, -H / W], [1, H / W], [0, 0]])


def test_windows_and_batches_match_one_pass(lifter27):
    kp = track(60)  # 4 windows of 16 outputs (42 inputs each), 2 windows (+2 mirrored) per pass
    whole = lifter27.lift(kp, W, H)
    np.testing.assert_allclose(lifter27.lift(kp, W, H, chunk_frames=16, batch_frames=200), whole, atol=1e-5)


def test_deterministic_in_eval(lifter27):
    kp = track(40)
    np.testing.assert_array_equal(lifter27.lift(kp, W, H), lifter27.lift(kp, W, H))


def test_causal_output_ignores_future(tmp_path):
    lifter = load_lifter(save_official(tmp_path / "c.bin", make_model(causal=True)), "cpu", causal=True)
    assert lifter.causal
    kp, t = track(60), 30
    changed = kp.copy()
    changed[t + 1:] += 50.0
    a, b = lifter.lift(kp, W, H), lifter.lift(changed, W, H)
    np.testing.assert_allclose(a[:t + 1], b[:t + 1], atol=1e-6)
    assert not np.allclose(a[t + 1], b[t + 1])


def test_symmetric_output_sees_half_the_field_ahead(lifter27):
    pad = (lifter27.receptive_field - 1) // 2
    kp, t = track(60), 30
    changed = kp.copy()
    changed[t + pad] += 50.0  # the furthest future frame frame t still sees
    a, b = lifter27.lift(kp, W, H), lifter27.lift(changed, W, H)
    assert not np.allclose(a[t], b[t])
    np.testing.assert_allclose(a[:t], b[:t], atol=1e-6)


def test_flip_augmentation_is_mirror_equivariant(lifter27):
    kp = track(20)
    mirrored = kp[:, mirror_permutation(convert_layout_names("coco17"))].copy()
    mirrored[..., 0] = W - mirrored[..., 0]
    a, b = lifter27.lift(kp, W, H), lifter27.lift(mirrored, W, H)
    b = b[:, mirror_permutation(H36M_17)]
    b[..., 0] *= -1
    np.testing.assert_allclose(a, b, atol=1e-5)


def convert_layout_names(layout: str) -> tuple[str, ...]:
    from engine.lifter import LAYOUTS

    return LAYOUTS[layout]


def test_layouts(lifter27, tmp_path):
    mp = track(15, joints=33)
    np.testing.assert_array_equal(lifter27.lift(mp, W, H, layout="mediapipe33"),
                                  lifter27.lift(mp[:, MP_TO_COCO17], W, H, layout="coco17"))
    h36 = load_lifter(save_official(tmp_path / "h.bin", make_model()), "cpu", input_layout="h36m17")
    np.testing.assert_allclose(h36.lift(mp[:, MP_TO_COCO17], W, H, layout="coco17"),
                               h36.lift(mediapipe_to_h36m(mp), W, H, layout="h36m17"), atol=1e-6)
    with pytest.raises(EngineError, match="cannot convert h36m17"):
        lifter27.lift(track(5), W, H, layout="h36m17")
    with pytest.raises(EngineError, match="need 17 joints"):
        lifter27.lift(track(5, joints=33), W, H, layout="coco17")
    with pytest.raises(EngineError, match="input layout"):
        load_lifter(tmp_path / "h.bin", "cpu", input_layout="openpose25")


def test_coco_to_h36m_uses_mediapipe_derivation():
    mp = track(3, joints=33)
    np.testing.assert_allclose(convert_layout(mp[:, MP_TO_COCO17], "coco17", "h36m17"), mediapipe_to_h36m(mp))


def test_missing_keypoints(lifter27):
    kp = track(30)
    kp[5] = np.nan  # a frame without a detection
    kp[10:14, 3] = np.nan  # a joint lost for a few frames
    out = lifter27.lift(kp, W, H)
    assert np.isnan(out[5]).all()
    assert np.isfinite(np.delete(out, 5, axis=0)).all()
    with pytest.raises(EngineError, match="every frame is empty"):
        lifter27.lift(np.full((4, 17, 2), np.nan), W, H)
    kp[:, 4] = np.nan
    with pytest.raises(EngineError, match="right_ear never detected"):
        lifter27.lift(kp, W, H)


def test_confidence_input_checkpoint(tmp_path):
    lifter = load_lifter(save_official(tmp_path / "p.bin", make_model(features=3)), "cpu")
    assert lifter.model.in_features == 3
    kp = track(8)
    ones = lifter.lift(kp, W, H)
    np.testing.assert_allclose(lifter.lift(kp, W, H, confidence=np.ones((8, 17))), ones)
    assert not np.allclose(lifter.lift(kp, W, H, confidence=np.full((8, 17), 0.2)), ones)


def test_bare_and_dataparallel_state_dicts_load(tmp_path):
    model = make_model()
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    torch.save({"model_pos": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "dp.pt")
    kp = track(9)
    a = load_lifter(tmp_path / "bare.pt", "cpu").lift(kp, W, H)
    np.testing.assert_array_equal(a, load_lifter(tmp_path / "dp.pt", "cpu").lift(kp, W, H))


def test_pytorch_04_checkpoint_without_bn_counters(tmp_path):
    state = {k: v for k, v in make_model().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"epoch": 80, "model_pos": state}, tmp_path / "old.bin")
    assert load_lifter(tmp_path / "old.bin", "cpu").receptive_field == 27


def test_strict_loading_rejects_mismatches(tmp_path):
    good = make_model().state_dict()

    def rejects(state, match):
        torch.save({"model_pos": state}, tmp_path / "bad.bin")
        with pytest.raises(EngineError, match=match) as info:
            load_lifter(tmp_path / "bad.bin", "cpu")
        assert "\n" not in str(info.value)

    rejects({k: v for k, v in good.items() if k != "layers_bn.1.running_var"},
            "missing layers_bn.1.running_var")
    rejects({**good, "layers_conv.9.weight": torch.zeros(16, 16, 3)}, "not whole residual blocks")
    rejects({**good, "extra.weight": torch.zeros(1)}, "unexpected extra.weight")
    rejects({**good, "layers_bn.2.weight": torch.zeros(8)}, r"layers_bn.2.weight has shape \(8,\)")
    rejects({**good, "layers_conv.1.weight": torch.zeros(16, 16, 3)}, "layers_conv.1.weight has shape")
    rejects(make_model(joints_out=15).state_dict(), "outputs 15 joints")
    rejects(make_model(joints_in=16).state_dict(), "input values per frame")
    rejects({"something": torch.zeros(3)}, "not a VideoPose3D checkpoint")


def test_unreadable_files(tmp_path):
    with pytest.raises(EngineError, match="not found"):
        load_lifter(tmp_path / "nope.bin")
    (tmp_path / "garbage.bin").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(EngineError, match="not a readable PyTorch file"):
        load_lifter(tmp_path / "garbage.bin")
    full = (tmp_path / "full.bin")
    save_official(full, make_model())
    (tmp_path / "cut.bin").write_bytes(full.read_bytes()[:5000])
    with pytest.raises(EngineError, match="not a readable PyTorch file"):
        load_lifter(tmp_path / "cut.bin")
    torch.save({"model_pos": {"expand_conv.weight": Path("x")}}, tmp_path / "obj.bin")
    with pytest.raises(EngineError, match="pathlib.PosixPath object.*trusted=True"):
        load_lifter(tmp_path / "obj.bin")
    with pytest.raises(EngineError, match="non-tensor entries"):
        load_lifter(tmp_path / "obj.bin", trusted=True)
    torch.save({"epoch": 1}, tmp_path / "empty.bin")
    with pytest.raises(EngineError, match="no 'model_pos'"):
        load_lifter(tmp_path / "empty.bin")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_request_without_cuda(ckpt27):
    with pytest.raises(EngineError, match="CUDA is not available"):
        load_lifter(ckpt27, device="cuda")


def test_lifted_to_mediapipe_prior():
    rng = np.random.default_rng(3)
    h36m, world = rng.normal(size=(4, 17, 3)), rng.normal(size=(4, 33, 3))
    out = lifted_to_mediapipe(h36m, world)
    for h, m in H36M_TO_MP.items():
        np.testing.assert_array_equal(out[:, m], h36m[:, h])
    for parent, child in (("nose", "left_eye"), ("left_wrist", "left_index"), ("right_ankle", "right_heel")):
        np.testing.assert_allclose(out[:, MP[child]] - out[:, MP[parent]],
                                   world[:, MP[child]] - world[:, MP[parent]])
    assert len(MEDIAPIPE_33) == out.shape[1]
