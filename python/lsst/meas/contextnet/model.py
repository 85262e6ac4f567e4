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

"""ContextNet (Kennamer et al. 2018) and its local-only baseline as PyTorch modules.

The modules are pure: no I/O, no device or dtype choice, no numpy. They script with
`torch.jit.script` and expose the methods the inference code relies on:

- ``local_features(cutouts[N, C, S, S], positions[N, 2]) -> features[N, F]``: the local network,
  run once per object (``C`` input channels: the cutout, and for PSF-aware models the PSF model
  at the source, `lsst.meas.contextnet.psfinputs`);
- ``predict_set_logits(features[B, m, F]) -> logits[B, m]`` and
  ``predict_sets(features[B, m, F]) -> probabilities[B, m]``: the global and prediction networks
  applied to sets of local feature vectors;
- ``forward(cutouts[B, m, C, S, S], positions[B, m, 2]) -> probabilities[B, m]`` and
  ``forward_logits`` (the same, before the sigmoid; for training with
  `torch.nn.BCEWithLogitsLoss`).

Two global (context) networks: the paper's concatenation of exactly ``m`` feature vectors
(`ContextNet`, ``global_kind="concat"``) and a permutation-invariant pooling network over any
number of sources (``global_kind="pool"``, DeepSets: ``rho(mean_i phi(f_i))``), which covers all
sources of a detector in one pass.
"""

# No ``from __future__ import annotations``: TorchScript needs the real ``Final`` annotations.

__all__ = [
    "ARCHITECTURES",
    "ContextNetConfig",
    "ContextNet",
    "LocalOnlyNet",
    "LocalNetwork",
    "build_model",
    "count_flops",
    "count_parameters",
]

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import torch
from lsst.meas.contextnet.psfinputs import check_inputs
from torch import nn

ARCHITECTURES: tuple[str, ...] = ("paper", "light", "local-only", "light-pool", "psf-concat", "psf-pool")
"""Names accepted by `ContextNetConfig.preset`."""

GLOBAL_KINDS: tuple[str, ...] = ("concat", "pool")
"""Global networks: the paper's concatenation over ``m`` sources, or pooling over any number."""


def _int_tuple(value: Any, name: str) -> tuple[int, ...]:
    """Convert a sequence of integers to a tuple, with a clear error otherwise."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a sequence of integers, got {value!r}")
    result = tuple(value)
    for item in result:
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise ValueError(f"{name} must contain positive integers, got {value!r}")
    return result


@dataclasses.dataclass(frozen=True)
class ContextNetConfig:
    """Hyper-parameters of a ContextNet (or local-only) model.

    The defaults are the paper's architecture (section 4): a local network
    Conv(64, 3x3) -> ELU -> Conv(128, 3x3) -> ELU -> Flatten -> Dense(20) -> ELU on 28x28
    cutouts, 2 position features appended (22 local features), a global network of three
    Dense(1000) -> ELU layers over the concatenated local features of ``m = 1000`` objects and a
    prediction network Dense(100) -> ELU -> Dense(100) -> ELU -> Dense(1) -> sigmoid per object.

    Parameters
    ----------
    architecture : `str`
        Name recorded in model metadata: ``"paper"``, ``"light"``, ``"local-only"`` or a
        user-chosen name for a custom configuration.
    context : `bool`
        Whether the model has the global (context) network. `False` gives `LocalOnlyNet`.
    cutout_size : `int`
        Side of the square cutouts, in pixels.
    m : `int`
        Number of objects per set seen by the global network.
    conv_channels : `tuple` [`int`, ...]
        Output channels of each convolution of the local network.
    kernel_size : `int`
        Side of the square convolution kernels (no padding, stride 1).
    pool : `bool`
        Whether each convolution is followed by a 2x2 max-pooling (the light local network).
    n_local : `int`
        Width of the dense layer ending the local network (before the position features).
    n_position : `int`
        Number of position features appended to the local features.
    global_widths : `tuple` [`int`, ...]
        Widths of the dense layers of the global network.
    predict_widths : `tuple` [`int`, ...]
        Widths of the hidden dense layers of the prediction network (a final Dense(1) follows).
    inputs : `tuple` [`str`, ...]
        Input channels: ``("image",)`` (PSF-blind, the paper), ``("image", "psf")`` or with
        ``"psf_peak"`` (`lsst.meas.contextnet.psfinputs`).
    global_kind : `str`
        ``"concat"`` (the paper: ``global_widths`` act on the concatenated features of exactly
        ``m`` sources) or ``"pool"`` (``global_widths`` are the per-source layers ``phi``, their
        mean over the set is followed by one layer ``rho`` of the last width; any set size).

    Raises
    ------
    ValueError
        If a size is not a positive integer, or the convolutions leave no pixels.

    """

    architecture: str = "paper"
    context: bool = True
    cutout_size: int = 28
    m: int = 1000
    conv_channels: tuple[int, ...] = (64, 128)
    kernel_size: int = 3
    pool: bool = False
    n_local: int = 20
    n_position: int = 2
    global_widths: tuple[int, ...] = (1000, 1000, 1000)
    predict_widths: tuple[int, ...] = (100, 100)
    inputs: tuple[str, ...] = ("image",)
    global_kind: str = "concat"

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        check_inputs(self.inputs)
        if self.global_kind not in GLOBAL_KINDS:
            raise ValueError(f"global_kind must be one of {GLOBAL_KINDS}, got {self.global_kind!r}")
        for name in ("cutout_size", "m", "kernel_size", "n_local"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.n_position, bool) or not isinstance(self.n_position, int) or self.n_position < 0:
            raise ValueError(f"n_position must be a non-negative integer, got {self.n_position!r}")
        object.__setattr__(self, "conv_channels", _int_tuple(self.conv_channels, "conv_channels"))
        object.__setattr__(self, "global_widths", _int_tuple(self.global_widths, "global_widths"))
        object.__setattr__(self, "predict_widths", _int_tuple(self.predict_widths, "predict_widths"))
        if not self.conv_channels:
            raise ValueError("conv_channels must name at least one convolution")
        if self.context and not self.global_widths:
            raise ValueError("a context model needs at least one global layer (global_widths)")
        if self.conv_output_side < 1:
            raise ValueError(
                f"cutout_size={self.cutout_size} is too small for {len(self.conv_channels)} "
                f"convolutions of kernel {self.kernel_size} (pool={self.pool})"
            )

    @property
    def conv_output_side(self) -> int:
        """Side of the feature maps after the last convolution (and pooling)."""
        side = self.cutout_size
        for _ in self.conv_channels:
            side = side - self.kernel_size + 1
            if self.pool:
                side //= 2
        return side

    @property
    def n_channels(self) -> int:
        """Number of input channels of the local network."""
        return len(self.inputs)

    @property
    def n_features(self) -> int:
        """Length of one object's local feature vector (dense features + positions)."""
        return self.n_local + self.n_position

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "ContextNetConfig":
        """Make the configuration of a named architecture.

        Parameters
        ----------
        name : `str`
            ``"paper"`` (the paper's networks), ``"light"`` (the paper's global and prediction
            networks with a small local CNN, convolutions of 16 and 32 channels each followed
            by a 2x2 max-pooling: about 1.3 MFLOP per cutout instead of 89) or ``"local-only"``
            (the light local CNN and the prediction network, no context: the baseline of the
            paper's Table 1); ``"light-pool"`` (the light local CNN with the pooling global
            network, PSF-blind), ``"psf-concat"`` (PSF-aware inputs, the light local CNN with
            24 features and the paper's concatenation network with ``m = 200``) and
            ``"psf-pool"`` (PSF-aware inputs and the pooling global network, phi of widths
            (128, 128): the model this package ships).
        **overrides
            Fields to change from the preset (e.g. ``m=200``).

        Returns
        -------
        config : `ContextNetConfig`
            The configuration.

        Raises
        ------
        ValueError
            If ``name`` is not one of `ARCHITECTURES` or an override is invalid.

        """
        light: dict[str, Any] = {"conv_channels": (16, 32), "pool": True}
        pooling: dict[str, Any] = {"global_kind": "pool", "global_widths": (128, 128), "m": 500}
        psf_aware: dict[str, Any] = {"n_local": 24, "inputs": ("image", "psf")}
        if name == "paper":
            base: dict[str, Any] = {"architecture": "paper"}
        elif name == "light":
            base = {"architecture": "light", **light}
        elif name == "local-only":
            base = {"architecture": "local-only", "context": False, **light}
        elif name == "light-pool":
            base = {"architecture": "light-pool", **light, "n_local": 24, **pooling}
        elif name == "psf-concat":
            base = {"architecture": "psf-concat", **light, **psf_aware, "m": 200}
        elif name == "psf-pool":
            base = {"architecture": "psf-pool", **light, **psf_aware, **pooling}
        else:
            raise ValueError(f"unknown architecture {name!r}; expected one of {ARCHITECTURES}")
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-serializable dictionary.

        Returns
        -------
        data : `dict` [`str`, `~typing.Any`]
            Every field, tuples as lists.

        """
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ContextNetConfig":
        """Rebuild a configuration written by `to_dict`.

        Parameters
        ----------
        data : `~collections.abc.Mapping` [`str`, `~typing.Any`]
            Field values; missing fields take their defaults.

        Returns
        -------
        config : `ContextNetConfig`
            The configuration.

        Raises
        ------
        ValueError
            If ``data`` has unknown keys or invalid values.

        """
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown ContextNetConfig fields: {sorted(unknown)}")
        kwargs = dict(data)
        for key in ("conv_channels", "global_widths", "predict_widths"):
            if key in kwargs:
                kwargs[key] = _int_tuple(kwargs[key], key)
        if "inputs" in kwargs:
            kwargs["inputs"] = tuple(kwargs["inputs"])
        return cls(**kwargs)


def _mlp(n_in: int, widths: Sequence[int], final: int | None) -> nn.Sequential:
    """Dense layers with ELU after each hidden width, optionally followed by a plain Linear."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(n_in, width), nn.ELU()]
        n_in = width
    if final is not None:
        layers.append(nn.Linear(n_in, final))
    return nn.Sequential(*layers)


class LocalNetwork(nn.Module):
    """The local network: a small CNN turning one cutout into ``n_local`` features.

    Parameters
    ----------
    config : `ContextNetConfig`
        Architecture; uses ``cutout_size``, ``conv_channels``, ``kernel_size``, ``pool`` and
        ``n_local``.

    """

    def __init__(self, config: ContextNetConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n_in = config.n_channels
        for channels in config.conv_channels:
            layers += [nn.Conv2d(n_in, channels, config.kernel_size), nn.ELU()]
            if config.pool:
                layers.append(nn.MaxPool2d(2))
            n_in = channels
        layers += [
            nn.Flatten(),
            nn.Linear(n_in * config.conv_output_side**2, config.n_local),
            nn.ELU(),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, cutouts: torch.Tensor) -> torch.Tensor:
        """Compute the CNN features.

        Parameters
        ----------
        cutouts : `torch.Tensor`
            Normalized inputs, shape ``(N, C, S, S)``.

        Returns
        -------
        features : `torch.Tensor`
            Shape ``(N, n_local)``.

        """
        return self.layers(cutouts)


class _ModelBase(nn.Module):
    """Shared local network, feature assembly and batching of the two model variants."""

    # The dataclass is kept for Python callers; TorchScript has no type for it.
    __jit_ignored_attributes__ = ["config"]

    cutout_size: Final[int]
    m: Final[int]
    n_features: Final[int]
    n_position: Final[int]
    n_channels: Final[int]

    def __init__(self, config: ContextNetConfig) -> None:
        super().__init__()
        self.config = config
        self.cutout_size = config.cutout_size
        self.m = config.m
        self.n_features = config.n_features
        self.n_position = config.n_position
        self.n_channels = config.n_channels
        self.local = LocalNetwork(config)

    @torch.jit.export
    def local_features(self, cutouts: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Run the local network on individual objects.

        Parameters
        ----------
        cutouts : `torch.Tensor`
            Normalized inputs, shape ``(N, n_channels, S, S)``.
        positions : `torch.Tensor`
            Position features in ``[-1, 1]``, shape ``(N, n_position)``.

        Returns
        -------
        features : `torch.Tensor`
            Local feature vectors ``[CNN features, positions]``, shape ``(N, n_features)``.

        """
        if cutouts.dim() != 4 or cutouts.shape[1] != self.n_channels:
            raise RuntimeError(f"cutouts must have shape (N, {self.n_channels}, S, S)")
        if cutouts.shape[2] != self.cutout_size or cutouts.shape[3] != self.cutout_size:
            raise RuntimeError(f"this model needs {self.cutout_size}x{self.cutout_size} cutouts")
        if positions.dim() != 2 or positions.shape[1] != self.n_position:
            raise RuntimeError(f"positions must have shape (N, {self.n_position})")
        if positions.shape[0] != cutouts.shape[0]:
            raise RuntimeError("cutouts and positions must have the same length")
        return torch.cat([self.local(cutouts), positions.to(cutouts.dtype)], dim=1)

    @torch.jit.export
    def predict_set_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Compute logits for every object of every set (overridden by the subclasses).

        Parameters
        ----------
        features : `torch.Tensor`
            Local features, shape ``(B, m, n_features)``.

        Returns
        -------
        logits : `torch.Tensor`
            Shape ``(B, m)``.

        """
        raise NotImplementedError("predict_set_logits is implemented by the subclasses")

    @torch.jit.export
    def predict_sets(self, features: torch.Tensor) -> torch.Tensor:
        """Compute the galaxy probability of every object of every set.

        Parameters
        ----------
        features : `torch.Tensor`
            Local features of each set's objects, shape ``(B, m, n_features)``.

        Returns
        -------
        probabilities : `torch.Tensor`
            ``P(galaxy)``, shape ``(B, m)``.

        """
        return torch.sigmoid(self.predict_set_logits(features))

    @torch.jit.export
    def forward_logits(self, cutouts: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Run the whole model on sets of cutouts and return logits.

        Parameters
        ----------
        cutouts : `torch.Tensor`
            Normalized inputs, shape ``(B, m, n_channels, S, S)``.
        positions : `torch.Tensor`
            Position features, shape ``(B, m, n_position)``.

        Returns
        -------
        logits : `torch.Tensor`
            Shape ``(B, m)``.

        """
        if cutouts.dim() != 5:
            raise RuntimeError("cutouts must have shape (B, m, C, S, S)")
        n_sets = cutouts.shape[0]
        n_objects = cutouts.shape[1]
        features = self.local_features(
            cutouts.reshape(n_sets * n_objects, cutouts.shape[2], cutouts.shape[3], cutouts.shape[4]),
            positions.reshape(n_sets * n_objects, positions.shape[2]),
        )
        return self.predict_set_logits(features.reshape(n_sets, n_objects, self.n_features))

    def forward(self, cutouts: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Run the whole model on sets of cutouts.

        Parameters
        ----------
        cutouts : `torch.Tensor`
            Normalized inputs, shape ``(B, m, n_channels, S, S)``.
        positions : `torch.Tensor`
            Position features, shape ``(B, m, n_position)``.

        Returns
        -------
        probabilities : `torch.Tensor`
            ``P(galaxy)``, shape ``(B, m)``.

        """
        return torch.sigmoid(self.forward_logits(cutouts, positions))


class ContextNet(_ModelBase):
    """ContextNet: local, global and prediction networks (paper section 3).

    Parameters
    ----------
    config : `ContextNetConfig`
        Architecture, with ``context=True``.

    Raises
    ------
    ValueError
        If ``config.context`` is false.

    Notes
    -----
    The prediction network's first layer acts on ``[local features, global features]``. Its weight
    is stored as one `torch.nn.Linear` over the concatenation, but it is evaluated as two matrix
    products, the global part once per set rather than once per object; the result is the same.

    """

    has_hidden: Final[bool]
    pooling: Final[bool]

    def __init__(self, config: ContextNetConfig) -> None:
        if not config.context:
            raise ValueError("ContextNet needs a configuration with context=True; use LocalOnlyNet")
        super().__init__(config)
        self.pooling = config.global_kind == "pool"
        if self.pooling:
            # DeepSets: phi per source, mean over the set, rho on the mean.
            self.global_net = _mlp(self.n_features, config.global_widths, None)
            width = config.global_widths[-1]
            self.rho = _mlp(width, (width,), None)
        else:
            self.global_net = _mlp(self.m * self.n_features, config.global_widths, None)
            self.rho = nn.Sequential()
        widths = config.predict_widths
        n_global = config.global_widths[-1]
        self.predict_first = nn.Linear(self.n_features + n_global, widths[0] if widths else 1)
        self.predict_rest = _mlp(widths[0], widths[1:], 1) if widths else nn.Sequential()
        self.has_hidden = len(widths) > 0

    @torch.jit.export
    def global_features(self, features: torch.Tensor) -> torch.Tensor:
        """Run the global network on sets of local features.

        Parameters
        ----------
        features : `torch.Tensor`
            Shape ``(B, m, n_features)``; any set size ``k >= 1`` instead of ``m`` for a pooling
            network.

        Returns
        -------
        context : `torch.Tensor`
            Global feature vector of each set, shape ``(B, global_widths[-1])``.

        """
        if features.dim() != 3 or features.shape[2] != self.n_features:
            raise RuntimeError(f"features must have shape (B, m, {self.n_features})")
        if self.pooling:
            if features.shape[1] < 1:
                raise RuntimeError("a set needs at least one object")
            return self.rho(self.global_net(features).mean(dim=1))
        if features.shape[1] != self.m:
            raise RuntimeError(f"this ContextNet takes sets of exactly m={self.m} objects")
        return self.global_net(features.reshape(features.shape[0], self.m * self.n_features))

    @torch.jit.export
    def predict_set_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Compute logits for every object of every set.

        Parameters
        ----------
        features : `torch.Tensor`
            Local features of each set's objects, shape ``(B, m, n_features)``.

        Returns
        -------
        logits : `torch.Tensor`
            Shape ``(B, m)``.

        """
        context = self.global_features(features)
        weight = self.predict_first.weight
        local_part = torch.matmul(features, weight[:, : self.n_features].t())
        global_part = torch.matmul(context, weight[:, self.n_features :].t()) + self.predict_first.bias
        hidden = local_part + global_part.unsqueeze(1)
        if self.has_hidden:
            hidden = self.predict_rest(nn.functional.elu(hidden))
        return hidden.squeeze(-1)


class LocalOnlyNet(_ModelBase):
    """Local network and per-object prediction network without context (paper Table 1).

    It has the same methods as `ContextNet`, so ensembling and inference code run unchanged:
    ``predict_sets`` applies the prediction network to each object independently and accepts sets
    of any size.

    Parameters
    ----------
    config : `ContextNetConfig`
        Architecture; ``global_widths`` and ``context`` are ignored.

    """

    def __init__(self, config: ContextNetConfig) -> None:
        super().__init__(config)
        self.head = _mlp(self.n_features, config.predict_widths, 1)

    @torch.jit.export
    def predict_set_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Compute logits for every object of every set, each independently.

        Parameters
        ----------
        features : `torch.Tensor`
            Local features, shape ``(B, k, n_features)`` for any ``k``.

        Returns
        -------
        logits : `torch.Tensor`
            Shape ``(B, k)``.

        """
        if features.dim() != 3 or features.shape[2] != self.n_features:
            raise RuntimeError(f"features must have shape (B, k, {self.n_features})")
        return self.head(features).squeeze(-1)


def build_model(config: ContextNetConfig) -> ContextNet | LocalOnlyNet:
    """Build the module a configuration describes.

    Parameters
    ----------
    config : `ContextNetConfig`
        Architecture.

    Returns
    -------
    model : `ContextNet` or `LocalOnlyNet`
        A freshly initialized module (on the CPU, float32); `LocalOnlyNet` when
        ``config.context`` is false.

    """
    return ContextNet(config) if config.context else LocalOnlyNet(config)


def count_flops(config: ContextNetConfig) -> dict[str, float]:
    """Count the floating-point operations of a forward pass.

    A multiply-add counts as two operations; activations, pooling and biases are ignored (they
    are a few per cent at most).

    Parameters
    ----------
    config : `ContextNetConfig`
        Architecture.

    Returns
    -------
    flops : `dict` [`str`, `float`]
        ``local_per_cutout`` (the local network on one cutout), ``global_per_set`` (the global
        network on one set), ``predict_per_object`` (the prediction network on one object, with
        its first layer split as in `ContextNet`), ``predict_per_set`` (the part of the prediction
        network computed once per set) and ``per_source`` (the cost per object of one set
        prediction: local + (global + per-set prediction) / m + per-object prediction).

    """
    side = config.cutout_size
    n_in = config.n_channels
    local = 0.0
    for channels in config.conv_channels:
        side = side - config.kernel_size + 1
        local += 2.0 * side * side * channels * n_in * config.kernel_size**2
        if config.pool:
            side //= 2
        n_in = channels
    local += 2.0 * n_in * side * side * config.n_local

    def dense(n_in: int, widths: Sequence[int]) -> float:
        total = 0.0
        for width in widths:
            total += 2.0 * n_in * width
            n_in = width
        return total

    widths = list(config.predict_widths) + [1]
    if config.context and config.global_kind == "pool":
        # phi per object, rho once per set: counted per object of a set of m.
        global_per_set = config.m * dense(config.n_features, config.global_widths)
        global_per_set += dense(config.global_widths[-1], config.global_widths[-1:])
        predict_per_set = 2.0 * config.global_widths[-1] * widths[0]
        predict_per_object = 2.0 * config.n_features * widths[0] + dense(widths[0], widths[1:])
        per_source = local + (global_per_set + predict_per_set) / config.m + predict_per_object
    elif config.context:
        global_per_set = dense(config.m * config.n_features, config.global_widths)
        predict_per_set = 2.0 * config.global_widths[-1] * widths[0]
        predict_per_object = 2.0 * config.n_features * widths[0] + dense(widths[0], widths[1:])
        per_source = local + (global_per_set + predict_per_set) / config.m + predict_per_object
    else:
        global_per_set = 0.0
        predict_per_set = 0.0
        predict_per_object = dense(config.n_features, widths)
        per_source = local + predict_per_object
    return {
        "local_per_cutout": local,
        "global_per_set": global_per_set,
        "predict_per_set": predict_per_set,
        "predict_per_object": predict_per_object,
        "per_source": per_source,
    }


def count_parameters(module: nn.Module) -> int:
    """Count the parameters of a module.

    Parameters
    ----------
    module : `torch.nn.Module`
        Any module (eager or scripted).

    Returns
    -------
    n_parameters : `int`
        Total number of scalar parameters.

    """
    return int(sum(math.prod(p.shape) for p in module.parameters()))
