# This file is part of meas_contextnet.
#
# See the COPYRIGHT file at the top-level directory of this distribution
# for details of code ownership.
#
# This program is free software: you can redistribute it and/or modify
# it under the terms of the GNU General Public License as published by
# the Free Software Foundation, either version 3 of the License, or
# (at your option) any later version.
#
# This program is distributed in the hope that it will be useful,
# but WITHOUT ANY WARRANTY; without even the implied warranty of
# MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
# GNU General Public License for more details.
#
# You should have received a copy of the GNU General Public License
# along with this program.  If not, see <https://www.gnu.org/licenses/>.

import pytest
import torch
from lsst.meas.contextnet.model import ContextNetConfig, build_model
from lsst.meas.contextnet.training.widen import widen_state_dict

CASES = {
    "psf-pool": {},
    "local-only": {},
    "psf-concat": {"m": 7, "global_widths": (40,)},
    "paper": {"m": 7, "conv_channels": (5, 6), "global_widths": (30,)},
}


def pair(name):
    narrow = ContextNetConfig.preset(name, **CASES[name])
    wide = ContextNetConfig.preset(
        name,
        **{**CASES[name], "conv_channels": tuple(2 * c + 3 for c in narrow.conv_channels)},
        n_local=narrow.n_local + 13,
    )
    return narrow, wide


def logits(model, config, seed=0):
    generator = torch.Generator().manual_seed(seed)
    n = 40 if config.global_kind == "pool" or not config.context else config.m
    cutouts = torch.randn(3, n, config.n_channels, 28, 28, generator=generator)
    positions = torch.rand(3, n, 2, generator=generator) * 2 - 1
    with torch.no_grad():
        return model.eval().forward_logits(cutouts, positions)


@pytest.mark.parametrize("name", sorted(CASES))
def test_widening_keeps_what_the_model_computes(name):
    narrow, wide = pair(name)
    torch.manual_seed(1)
    small = build_model(narrow)
    reference = logits(small, narrow)
    exact, noisy = build_model(wide), build_model(wide)
    exact.load_state_dict(widen_state_dict(small.state_dict(), narrow, wide, noise=0.0))
    noisy.load_state_dict(widen_state_dict(small.state_dict(), narrow, wide, noise=0.01, seed=4))
    torch.testing.assert_close(logits(exact, wide), reference, rtol=0, atol=1e-5)
    change = (logits(noisy, wide) - reference).abs().max().item()
    assert 1e-6 < change < 0.01 * reference.abs().max().item()


def test_copies_are_told_apart_by_the_noise_only():
    narrow, wide = pair("psf-pool")
    small = build_model(narrow)
    first_conv = "local.layers.0.weight"
    exact = widen_state_dict(small.state_dict(), narrow, wide, noise=0.0)[first_conv]
    noisy = widen_state_dict(small.state_dict(), narrow, wide, noise=0.01, seed=2)[first_conv]
    n_old = narrow.conv_channels[0]
    # The original units are untouched; each copy equals an original unit exactly without noise.
    torch.testing.assert_close(noisy[:n_old], small.state_dict()[first_conv], rtol=0, atol=0)
    for copy in exact[n_old:]:
        assert any(torch.equal(copy, original) for original in exact[:n_old])
    assert not torch.equal(noisy[n_old:], exact[n_old:])
    again = widen_state_dict(small.state_dict(), narrow, wide, noise=0.01, seed=2)[first_conv]
    assert torch.equal(again, noisy)


def test_only_a_wider_local_network_is_accepted():
    narrow, wide = pair("psf-pool")
    state = build_model(narrow).state_dict()
    with pytest.raises(ValueError, match="narrows a layer"):
        widen_state_dict(build_model(wide).state_dict(), wide, narrow)
    other = ContextNetConfig.preset("psf-pool", global_widths=(64, 64))
    with pytest.raises(ValueError, match="differ in \\['global_widths'\\]"):
        widen_state_dict(state, narrow, other)
    deeper = ContextNetConfig.preset("psf-pool", conv_channels=(16, 32, 32))
    with pytest.raises(ValueError, match="2 convolutions cannot become 3"):
        widen_state_dict(state, narrow, deeper)


def test_new_input_channels_start_at_zero_weight() -> None:
    narrow = ContextNetConfig.preset("psf-pool")
    wide = ContextNetConfig.preset("psf-pool", inputs=("image", "psf", "psf_peak"), n_local=30)
    torch.manual_seed(2)
    small = build_model(narrow)
    state = widen_state_dict(small.state_dict(), narrow, wide, noise=0.0)
    grown = build_model(wide)
    grown.load_state_dict(state)
    first = state["local.layers.0.weight"]
    torch.testing.assert_close(first[:, :2], small.state_dict()["local.layers.0.weight"])
    assert not first[:, 2].any()
    generator = torch.Generator().manual_seed(3)
    cutouts = torch.randn(2, 30, 3, 28, 28, generator=generator)
    positions = torch.rand(2, 30, 2, generator=generator) * 2 - 1
    with torch.no_grad():
        reference = small.eval().forward_logits(cutouts[:, :, :2], positions)
        grown_logits = grown.eval().forward_logits(cutouts, positions)
    torch.testing.assert_close(grown_logits, reference, rtol=0, atol=1e-5)
    for inputs in (("image",), ("image", "psf_peak")):
        with pytest.raises(ValueError, match="drops or reorders a channel"):
            widen_state_dict(state, wide, ContextNetConfig.preset("psf-pool", inputs=inputs, n_local=30))
    # A channel inserted between old ones, with wider convolutions and noise on the copies: the
    # old channels' weights move to their new places and only the new channel's stay exactly 0.
    middle = ContextNetConfig.preset("psf-pool", inputs=("image", "psf_peak"))
    grown_config = ContextNetConfig.preset(
        "psf-pool", inputs=("image", "psf", "psf_peak"), conv_channels=(20, 32)
    )
    small_state = build_model(middle).state_dict()
    first = widen_state_dict(small_state, middle, grown_config, noise=0.01, seed=1)["local.layers.0.weight"]
    old = small_state["local.layers.0.weight"]
    torch.testing.assert_close(first[:16, [0, 2]], old, rtol=0, atol=0)
    assert not first[:, 1].any() and first[16:, [0, 2]].abs().min() > 0
    with pytest.raises(ValueError, match="model inputs"):
        ContextNetConfig.preset("psf-pool", inputs=("image", "psf_peak", "psf"))
