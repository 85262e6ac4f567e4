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

"""Function-preserving widening of a trained model's local network.

A wider local CNN (more convolution channels, more local features) can start from a trained
narrower one instead of from random weights (Net2WiderNet, Chen, Goodfellow & Shlens 2016). Each
new unit copies an existing unit of the same layer; the layer that reads the copied unit divides
its weights for that unit by the number of copies. Every activation of the local network (ELU,
max-pooling) acts unit by unit, so the widened model computes the same function as the narrow one.
A small noise on the copies lets training tell them apart.

The local network can also gain input channels (a model of ``("image", "psf")`` becoming one of
``("image", "psf", "psf_peak")``): the first convolution's weights for a new channel start at
zero, so the model still computes what it did, and training learns what the channel adds.
"""

from __future__ import annotations

__all__ = ["WIDENABLE_FIELDS", "widen_state_dict"]


import torch
from lsst.meas.contextnet.model import ContextNetConfig, build_model
from torch import nn

WIDENABLE_FIELDS = ("conv_channels", "n_local", "inputs")
"""Configuration fields `widen_state_dict` can enlarge; every other field must be the same."""


def _check_widenable(narrow: ContextNetConfig, wide: ContextNetConfig) -> None:
    """Raise `ValueError` unless ``wide`` only enlarges ``narrow``'s `WIDENABLE_FIELDS`."""
    a, b = narrow.to_dict(), wide.to_dict()
    free = (*WIDENABLE_FIELDS, "architecture")
    differ = sorted(key for key in a if key not in free and a[key] != b[key])
    if differ:
        raise ValueError(f"cannot widen: the configurations differ in {differ}, not only in {free}")
    if len(narrow.conv_channels) != len(wide.conv_channels):
        raise ValueError(
            f"cannot widen: {len(narrow.conv_channels)} convolutions cannot become {len(wide.conv_channels)}"
        )
    sizes = list(zip(narrow.conv_channels, wide.conv_channels)) + [(narrow.n_local, wide.n_local)]
    kept = [name for name in wide.inputs if name in narrow.inputs]
    if kept != list(narrow.inputs):
        raise ValueError(
            f"cannot widen: inputs {list(narrow.inputs)} -> {list(wide.inputs)} drops or reorders a channel"
        )
    if any(new < old for old, new in sizes):
        raise ValueError(
            f"cannot widen: conv_channels {narrow.conv_channels} -> {wide.conv_channels}, "
            f"n_local {narrow.n_local} -> {wide.n_local} narrows a layer"
        )


def _unit_map(n_old: int, n_new: int, generator: torch.Generator) -> torch.Tensor:
    """Source unit of each new unit: the old units in order, then random copies."""
    extra = torch.randint(n_old, (n_new - n_old,), generator=generator)
    return torch.cat([torch.arange(n_old), extra])


def _copy_outputs(
    weight: torch.Tensor, bias: torch.Tensor, units: torch.Tensor, noise: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy a layer's output units (rows of ``weight``); the copies get a relative noise."""
    new_weight, new_bias = weight[units].clone(), bias[units].clone()
    copies = new_weight[weight.shape[0] :]
    copies += noise * weight.std() * torch.randn(copies.shape, generator=generator)
    return new_weight, new_bias


def _spread_inputs(
    weight: torch.Tensor, units: torch.Tensor, n_units: int, per_unit: int, n_blocks: int, block: int
) -> torch.Tensor:
    """Spread a reading layer's weights for each copied unit over the unit's copies.

    Parameters
    ----------
    weight : `torch.Tensor`
        Weights of shape ``(out, n_inputs)``. The first ``n_blocks * block`` inputs are
        ``n_blocks`` blocks of ``block`` inputs (one per object for the paper's concatenation
        network, else one); each block starts with the ``n_units`` copied units, ``per_unit``
        consecutive inputs each (the pixels of a channel, or 1). Other inputs are kept.
    units : `torch.Tensor`
        Source unit of each new unit (`_unit_map`).
    n_units, per_unit, n_blocks, block : `int`
        The layout above.

    Returns
    -------
    weight : `torch.Tensor`
        Shape ``(out, n_inputs + n_blocks * (len(units) - n_units) * per_unit)``.

    """
    out = weight.shape[0]
    counts = torch.bincount(units, minlength=n_units).to(weight.dtype)[units]
    blocks = weight[:, : n_blocks * block].reshape(out, n_blocks, block)
    copied = blocks[:, :, : n_units * per_unit].reshape(out, n_blocks, n_units, per_unit)
    copied = (copied[:, :, units] / counts[None, None, :, None]).reshape(out, n_blocks, -1)
    blocks = torch.cat([copied, blocks[:, :, n_units * per_unit :]], dim=2).reshape(out, -1)
    return torch.cat([blocks, weight[:, n_blocks * block :]], dim=1)


def widen_state_dict(
    narrow_state: dict[str, torch.Tensor],
    narrow: ContextNetConfig,
    wide: ContextNetConfig,
    *,
    noise: float = 0.01,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Make the weights of a wider model that computes what a trained narrow one computes.

    Parameters
    ----------
    narrow_state : `dict` [`str`, `torch.Tensor`]
        ``state_dict()`` of a model built from ``narrow``.
    narrow, wide : `~lsst.meas.contextnet.model.ContextNetConfig`
        The two architectures; ``wide`` may only have more channels in each convolution, more
        local features and more input channels (`WIDENABLE_FIELDS`).
    noise : `float`
        Standard deviation of the noise added to the copied units' incoming weights, relative to
        the standard deviation of their layer's weights. With 0 the copies stay exact and
        training cannot separate them from their originals; with noise the widened model's
        output differs from the narrow one's by about that fraction.
    seed : `int`
        Seed of the choice of copied units and of the noise.

    Returns
    -------
    state : `dict` [`str`, `torch.Tensor`]
        ``state_dict()`` for a model built from ``wide``.

    Raises
    ------
    ValueError
        If ``wide`` differs from ``narrow`` in anything but a wider local network.

    """
    _check_widenable(narrow, wide)
    generator = torch.Generator().manual_seed(seed)
    template = build_model(wide)
    state = {key: value.detach().clone() for key, value in narrow_state.items()}
    # The local network's weighted layers in order (the convolutions, then the dense layer) and
    # the inputs each unit of a layer feeds to the next: a kernel per channel, the pixels of the
    # last feature map, one feature.
    layers = [
        f"local.layers.{name}"
        for name, module in template.local.layers.named_children()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    widths = [*wide.conv_channels, wide.n_local]
    per_unit = [wide.kernel_size**2] * (len(layers) - 2) + [wide.conv_output_side**2]
    for index, (layer, width) in enumerate(zip(layers, widths)):
        n_units = state[f"{layer}.weight"].shape[0]
        units = _unit_map(n_units, width, generator)
        state[f"{layer}.weight"], state[f"{layer}.bias"] = _copy_outputs(
            state[f"{layer}.weight"], state[f"{layer}.bias"], units, noise, generator
        )
        if index + 1 < len(layers):
            key = f"{layers[index + 1]}.weight"
            reader = state[key]
            flat = reader.reshape(reader.shape[0], -1)
            spread = _spread_inputs(flat, units, n_units, per_unit[index], 1, flat.shape[1])
            state[key] = spread.reshape(reader.shape[0], -1, *reader.shape[2:])
        else:
            for key, n_blocks in _feature_readers(wide):
                state[key] = _spread_inputs(state[key], units, n_units, 1, n_blocks, narrow.n_features)
    # New input channels, after the units are copied (so that no copy's noise reaches them):
    # zero weights in the first convolution, the old channels' weights where those channels go.
    if wide.inputs != narrow.inputs:
        old = state[f"{layers[0]}.weight"]
        grown = old.new_zeros((old.shape[0], len(wide.inputs), *old.shape[2:]))
        grown[:, [wide.inputs.index(name) for name in narrow.inputs]] = old
        state[f"{layers[0]}.weight"] = grown
    for key, value in template.state_dict().items():
        if state[key].shape != value.shape:
            raise AssertionError(f"widening made {key} {tuple(state[key].shape)}, not {tuple(value.shape)}")
    return state


def _feature_readers(config: ContextNetConfig) -> list[tuple[str, int]]:
    """The layers reading the local feature vectors, with how many objects' vectors each reads."""
    if not config.context:
        return [("head.0.weight", 1)]
    n_objects = 1 if config.global_kind == "pool" else config.m
    return [("global_net.0.weight", n_objects), ("predict_first.weight", 1)]
