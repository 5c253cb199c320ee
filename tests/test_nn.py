"""The student network: compute budget, output shapes, RGB-D input, smaller input sizes."""

from __future__ import annotations

import pytest
import torch

from gaitpose.nn import ModelConfig, build_model, count_params_macs
from gaitpose.skeleton import NUM_KEYPOINTS


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_default_student_fits_the_budget() -> None:
    model = build_model()
    params, macs = count_params_macs(model, (256, 192))
    assert params <= 1.5e6, params
    assert macs <= 0.25e9, macs
    assert params > 0.2e6 and macs > 0.05e9  # the counter counts something real


def test_output_shape_and_stride() -> None:
    model = build_model().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 256, 192))
    assert out.shape == (2, NUM_KEYPOINTS, 64, 48)


def test_four_channel_input() -> None:
    model = build_model(ModelConfig(in_channels=4)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 4, 256, 192))
    assert out.shape == (1, NUM_KEYPOINTS, 64, 48)
    with pytest.raises(RuntimeError):
        model(torch.randn(1, 3, 256, 192))


def test_192x144_input() -> None:
    cfg = ModelConfig(input_size=(192, 144))
    model = build_model(cfg.to_dict()).eval()  # dict form, as read back from a checkpoint
    with torch.no_grad():
        out = model(torch.randn(1, 3, 192, 144))
    assert out.shape == (1, NUM_KEYPOINTS, 48, 36)
    _, macs = count_params_macs(model, (192, 144))
    _, macs_full = count_params_macs(build_model(), (256, 192))
    assert macs < 0.7 * macs_full


def test_model_config_round_trip() -> None:
    cfg = ModelConfig(input_size=(128, 96), decoder_channels=32)
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg
