from __future__ import annotations

import numpy as np
import pytest
import torch

from pff.flowviz import color_wheel, flow_to_rgb, wheel_legend


def test_zero_flow_is_white_and_layouts_agree():
    assert (flow_to_rgb(np.zeros((2, 3, 4))) == 255).all()
    flow = np.random.default_rng(0).normal(size=(2, 5, 6))
    chw = flow_to_rgb(flow)
    assert chw.shape == (5, 6, 3) and chw.dtype == np.uint8
    np.testing.assert_array_equal(chw, flow_to_rgb(np.moveaxis(flow, 0, -1)))
    np.testing.assert_array_equal(chw, flow_to_rgb(torch.from_numpy(flow)[None]))


def test_directions_follow_the_wheel():
    # Middlebury convention: +x is red, -x cyan (its middle)
    right = flow_to_rgb(np.array([1.0, 0.0]).reshape(2, 1, 1), max_flow=1.0)[0, 0]
    np.testing.assert_array_equal(right, [255, 0, 0])
    left = flow_to_rgb(np.array([-1.0, 0.0]).reshape(2, 1, 1), max_flow=1.0)[0, 0]
    assert left[0] < 30 and left[1] > 150 and left[2] > 150
    too_long = flow_to_rgb(np.array([2.0, 0.0]).reshape(2, 1, 1), max_flow=1.0)[0, 0]
    np.testing.assert_array_equal(too_long, [191, 0, 0])


def test_wheel_and_legend_and_errors():
    wheel = color_wheel()
    assert wheel.shape == (55, 3) and wheel.min() >= 0 and wheel.max() <= 1
    assert wheel_legend(16).shape == (16, 16, 3)
    with pytest.raises(ValueError, match="flow must be"):
        flow_to_rgb(np.zeros((3, 4, 5)))
    assert (flow_to_rgb(np.full((2, 2, 2), np.nan)) == 255).all()
