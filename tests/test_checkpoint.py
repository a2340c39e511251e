"""Loading checkpoints safely, and the safetensors export."""

import pytest
import torch

from saliency_tubes.errors import SaliencyTubesError
from saliency_tubes.lightning import VideoClassifier
from saliency_tubes.models.io import export_safetensors, load_checkpoint

from helpers.common import Trap


def _lightning_like_checkpoint(path, module: VideoClassifier, **extra):
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), **extra}, path)


@pytest.fixture
def module():
    return VideoClassifier(
        arch="resnet3d_10",
        num_classes=3,
        class_names=["a", "b", "c"],
        arch_kwargs={"width": 4},
        clip_len=4,
        stride=1,
        input_size=32,
    )


def test_a_checkpoint_that_runs_code_is_refused_and_the_code_does_not_run(tmp_path, module):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    _lightning_like_checkpoint(evil, module, trap=Trap(marker))
    with pytest.raises(SaliencyTubesError, match="cannot be loaded safely") as err:
        load_checkpoint(evil)
    assert "\n" not in str(err.value)
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the trap is real: an unsafe load springs it
    assert marker.exists()


def test_round_trip_and_safetensors_export(tmp_path, module):
    ckpt = tmp_path / "m.ckpt"
    _lightning_like_checkpoint(ckpt, module)
    model, info = load_checkpoint(ckpt)
    assert not model.training and info.class_names == ["a", "b", "c"] and info.arch_kwargs == {"width": 4}
    out = export_safetensors(model, info, tmp_path / "m.safetensors")
    again, info2 = load_checkpoint(out)
    assert info2 == info
    clips = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(clips), model(clips), rtol=0, atol=0)
    assert out.read_bytes()[:8] != b"PK\x03\x04"  # not a zip/pickle


@pytest.mark.parametrize(
    "content, message",
    [(b"", "not a PyTorch or safetensors weight file"), (b"garbage" * 10, "not a PyTorch or safetensors weight file")],
)
def test_files_that_are_not_checkpoints(tmp_path, content, message):
    path = tmp_path / "x.ckpt"
    path.write_bytes(content)
    with pytest.raises(SaliencyTubesError, match=message):
        load_checkpoint(path)
    bad_st = tmp_path / "x.safetensors"
    bad_st.write_bytes(content)
    with pytest.raises(SaliencyTubesError, match="safetensors"):
        load_checkpoint(bad_st)


def test_weights_of_another_architecture_name_the_first_bad_key(tmp_path, module):
    ckpt = tmp_path / "m.ckpt"
    state = {k: v for k, v in module.state_dict().items() if "layer4" not in k}
    torch.save({"state_dict": state, "hyper_parameters": dict(module.hparams)}, ckpt)
    with pytest.raises(SaliencyTubesError, match="first mismatched key 'layer4"):
        load_checkpoint(ckpt)
