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

"""Tests of the ContextNet and local-only modules."""

import warnings

import pytest
import torch
from lsst.meas.contextnet.model import (
    ARCHITECTURES,
    ContextNet,
    ContextNetConfig,
    LocalOnlyNet,
    build_model,
    count_flops,
    count_parameters,
)
from torch.utils.flop_counter import FlopCounterMode

TINY = {"m": 6, "global_widths": (16, 12), "predict_widths": (10, 8), "n_local": 5}


def tiny(name: str = "light", **overrides) -> ContextNetConfig:
    return ContextNetConfig.preset(name, **{**TINY, **overrides})


def script(module):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(module)


def random_inputs(config: ContextNetConfig, n_sets: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    size = config.cutout_size
    cutouts = torch.randn(n_sets, config.m, config.n_channels, size, size, generator=gen)
    positions = torch.rand(n_sets, config.m, 2, generator=gen) * 2 - 1
    return cutouts, positions


def test_paper_defaults():
    config = ContextNetConfig()
    assert config.architecture == "paper"
    assert config.conv_channels == (64, 128) and not config.pool
    assert config.n_features == 22 and config.m == 1000
    assert config.global_widths == (1000, 1000, 1000) and config.predict_widths == (100, 100)
    assert config.conv_output_side == 24
    assert ContextNetConfig.preset("light").conv_output_side == 5


def test_config_round_trip_and_validation():
    for name in ARCHITECTURES:
        config = ContextNetConfig.preset(name, m=37)
        assert ContextNetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown architecture"):
        ContextNetConfig.preset("alexnet")
    with pytest.raises(ValueError, match="unknown ContextNetConfig fields"):
        ContextNetConfig.from_dict({"m": 5, "width": 3})
    with pytest.raises(ValueError, match="too small"):
        ContextNetConfig(cutout_size=6, conv_channels=(4, 4, 4))
    with pytest.raises(ValueError, match="m must be a positive integer"):
        ContextNetConfig(m=0)
    with pytest.raises(ValueError, match="conv_channels"):
        ContextNetConfig(conv_channels=(4, -1))
    with pytest.raises(ValueError, match="context=True"):
        ContextNet(ContextNetConfig.preset("local-only"))


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_shapes_and_method_consistency(name):
    config = tiny(name)
    torch.manual_seed(1)
    model = build_model(config).eval()
    assert isinstance(model, LocalOnlyNet if name == "local-only" else ContextNet)
    cutouts, positions = random_inputs(config)
    with torch.no_grad():
        probs = model(cutouts, positions)
        features = model.local_features(
            cutouts.reshape(-1, config.n_channels, 28, 28), positions.reshape(-1, 2)
        )
        from_features = model.predict_sets(features.reshape(3, config.m, -1))
        logits = model.forward_logits(cutouts, positions)
    assert probs.shape == (3, config.m)
    assert features.shape == (3 * config.m, config.n_features)
    # The position features are appended unchanged.
    torch.testing.assert_close(features[:, -2:], positions.reshape(-1, 2))
    torch.testing.assert_close(from_features, probs)
    torch.testing.assert_close(torch.sigmoid(logits), probs)
    assert bool(((probs > 0) & (probs < 1)).all())


def test_split_first_prediction_layer_equals_concatenation():
    config = tiny("light")
    torch.manual_seed(2)
    model = build_model(config).eval()
    features = torch.randn(4, config.m, config.n_features)
    with torch.no_grad():
        context = model.global_features(features)
        joined = torch.cat([features, context.unsqueeze(1).expand(-1, config.m, -1)], dim=2)
        reference = model.predict_rest(torch.nn.functional.elu(model.predict_first(joined))).squeeze(-1)
        torch.testing.assert_close(model.predict_set_logits(features), reference)


def test_context_is_used_only_by_contextnet():
    features = torch.randn(2, TINY["m"], TINY["n_local"] + 2)
    changed = features.clone()
    changed[:, 1:] = torch.randn_like(changed[:, 1:])
    torch.manual_seed(3)
    context_model = build_model(tiny("light")).eval()
    local_model = build_model(tiny("local-only")).eval()
    with torch.no_grad():
        assert not torch.allclose(
            context_model.predict_sets(features)[:, 0], context_model.predict_sets(changed)[:, 0]
        )
        torch.testing.assert_close(
            local_model.predict_sets(features)[:, 0], local_model.predict_sets(changed)[:, 0]
        )
        # The local-only head accepts sets of any size.
        assert local_model.predict_sets(features[:, :2]).shape == (2, 2)


def test_contextnet_rejects_wrong_set_size_and_cutout_size():
    config = tiny("light")
    model = build_model(config).eval()
    with pytest.raises(RuntimeError, match="exactly m=6"):
        model.predict_sets(torch.zeros(1, 5, config.n_features))
    with pytest.raises(RuntimeError, match="28x28"):
        model.local_features(torch.zeros(2, 1, 27, 27), torch.zeros(2, 2))
    scripted = script(model)
    # A scripted module reports the same message through torch.jit.Error.
    with pytest.raises(torch.jit.Error, match="exactly m=6"):
        scripted.predict_sets(torch.zeros(1, 5, config.n_features))


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_torchscript_matches_eager(name):
    config = tiny(name)
    torch.manual_seed(4)
    model = build_model(config).eval()
    scripted = script(model)
    cutouts, positions = random_inputs(config, seed=5)
    flat_cutouts, flat_positions = cutouts.reshape(-1, config.n_channels, 28, 28), positions.reshape(-1, 2)
    with torch.no_grad():
        torch.testing.assert_close(scripted(cutouts, positions), model(cutouts, positions), rtol=0, atol=0)
        eager_features = model.local_features(flat_cutouts, flat_positions)
        torch.testing.assert_close(scripted.local_features(flat_cutouts, flat_positions), eager_features)
        sets = eager_features.reshape(3, config.m, -1)
        torch.testing.assert_close(scripted.predict_sets(sets), model.predict_sets(sets), rtol=0, atol=0)
    assert scripted.m == config.m and scripted.cutout_size == 28


@pytest.mark.parametrize("name", ["paper", "light"])
def test_flop_count_matches_torch_counter(name):
    config = ContextNetConfig.preset(name, m=4, global_widths=(8,), predict_widths=(6, 5))
    model = build_model(config).eval()
    flops = count_flops(config)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.local_features(torch.zeros(3, 1, 28, 28), torch.zeros(3, 2))
    assert counter.get_total_flops() == 3 * flops["local_per_cutout"]
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.predict_sets(torch.zeros(2, 4, config.n_features))
    per_set = flops["global_per_set"] + flops["predict_per_set"] + 4 * flops["predict_per_object"]
    assert counter.get_total_flops() == 2 * per_set


def test_flop_counts_of_paper_and_light_local_networks():
    paper = count_flops(ContextNetConfig.preset("paper"))["local_per_cutout"]
    light = count_flops(ContextNetConfig.preset("light"))["local_per_cutout"]
    # Paper: 2 * (26^2*64*9 + 24^2*128*64*9 + 24^2*128*20) multiply-adds.
    assert paper == 2 * (26**2 * 64 * 9 + 24**2 * 128 * 64 * 9 + 24**2 * 128 * 20)
    assert 85e6 < paper < 92e6
    assert 1e6 < light < 2e6
    local_only = count_flops(ContextNetConfig.preset("local-only"))
    assert local_only["global_per_set"] == 0


def test_parameter_count():
    config = ContextNetConfig.preset("paper", m=10)
    model = build_model(config)
    local = (1 * 64 * 9 + 64) + (64 * 128 * 9 + 128) + (24 * 24 * 128 * 20 + 20)
    glob = (220 * 1000 + 1000) + 2 * (1000 * 1000 + 1000)
    predict = (1022 * 100 + 100) + (100 * 100 + 100) + (100 + 1)
    assert count_parameters(model) == local + glob + predict


def test_pooling_network_takes_any_set_size_and_is_permutation_invariant():
    config = ContextNetConfig.preset("psf-pool", m=16, conv_channels=(4,), n_local=6, global_widths=(8, 8))
    model = build_model(config).eval()
    scripted = script(model)
    gen = torch.Generator().manual_seed(3)
    for n in (1, 7, 40):
        cutouts = torch.randn(2, n, 2, 28, 28, generator=gen)
        positions = torch.rand(2, n, 2, generator=gen) * 2 - 1
        with torch.no_grad():
            out = scripted(cutouts, positions)
            assert out.shape == (2, n)
            perm = torch.randperm(n, generator=gen)
            permuted = scripted(cutouts[:, perm], positions[:, perm])
            torch.testing.assert_close(permuted, out[:, perm], atol=1e-6, rtol=1e-5)
            context = model.global_features(model.local_features(cutouts[0], positions[0]).unsqueeze(0))
            twice = model.global_features(
                model.local_features(cutouts[0].repeat(2, 1, 1, 1), positions[0].repeat(2, 1)).unsqueeze(0)
            )
            # A mean over the set: duplicating every source leaves the context unchanged.
            torch.testing.assert_close(context, twice, atol=1e-6, rtol=1e-5)
    concat = build_model(ContextNetConfig.preset("psf-concat", m=16, conv_channels=(4,)))
    with pytest.raises(RuntimeError, match="exactly m=16"):
        concat.predict_sets(torch.zeros(1, 15, concat.n_features))
    with pytest.raises(RuntimeError, match=r"\(N, 2, S, S\)"):
        model.local_features(torch.zeros(3, 1, 28, 28), torch.zeros(3, 2))
