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

"""Training ContextNet on simulated cutout sets and exporting the TorchScript model.

The training data are the HDF5 shards written by ``contextnet make-training-data``
(`lsst.meas.contextnet.sim.generator`): each shard holds sets of ``m`` cutouts from one simulated
visit, with positions and labels. Training minimizes the binary cross-entropy of every object of
every set with Adam (paper section 3), holds out whole sets (visits) for validation, stops early
when the validation loss stops improving, and exports the best weights with
`lsst.meas.contextnet.modelio.export_model` together with a model card (data manifest, seed,
command line, validation metrics, timings).

Augmentation uses the 8 symmetries of the square (rotations by multiples of 90 degrees and
flips), drawn once per set and applied to every cutout of the set *and* to the position features.
That is the same visit seen through a rotated or flipped camera: the PSF of every source turns
with its cutout and the PSF field across the detector turns with the positions, so the context
the global network learns from (stars all show the local PSF) stays physically consistent.
Transforming each cutout independently would not: neighbouring stars would show PSFs elongated
in different directions, which never happens in a real exposure and would teach the network that
the PSF carries no information. Positions cannot simply be left unchanged either, because the
PSF's variation across the detector is tied to them.
"""

from __future__ import annotations

__all__ = ["TrainingOptions", "TrainingResult", "object_weights", "run_training", "train_model"]

import dataclasses
import logging
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lsst.meas.contextnet.cutouts import DEFAULT_NORMALIZATION
from lsst.meas.contextnet.serialization import json_compatible
from lsst.meas.contextnet.symmetry import apply_symmetry
from lsst.meas.contextnet.training.data import TrainingData, combine_training_data, load_training_data

_LOG = logging.getLogger(__name__)

_CHECKPOINT_NAME = "checkpoint.pt"

_WEIGHT_OPTIONS = ("bright_star_weight", "blended_star_weight", "blended_galaxy_weight")
"""The `TrainingOptions` fields that weigh objects in the loss (each 1 by default)."""


@dataclasses.dataclass
class TrainingOptions:
    """Options of `train_model` (the architecture is a `~lsst.meas.contextnet.model.ContextNetConfig`).

    Parameters
    ----------
    epochs : `int`
        Maximum number of passes over the training sets.
    batch_sets : `int`
        Sets per optimizer step.
    lr : `float`
        Adam learning rate.
    seed : `int`
        Seed of the weight initialization, validation split, set shuffling and augmentation.
    device : `str`
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    val_fraction : `float`
        Fraction of the stored sets (visits) held out for validation.
    patience : `int`
        Stop after this many epochs without a lower validation loss.
    checkpoint_dir : `pathlib.Path`, optional
        Directory for ``checkpoint.pt``, written after every epoch.
    resume : `bool`
        Continue from the checkpoint in ``checkpoint_dir``.
    max_minutes : `float`, optional
        Stop (and export the best model so far) after this much training time.
    augment : `bool`
        Apply the per-set symmetries of the square.
    progress : `bool`
        Show a tqdm progress bar.
    init_from : `pathlib.Path`, optional
        Model file whose weights start the training (warm start) instead of a random
        initialization; its architecture must be the one being trained, or the same with a
        narrower local network (fewer convolution channels, local features or input
        channels), which is then widened without changing what it computes
        (`~lsst.meas.contextnet.training.widen.widen_state_dict`).
    bright_star_weight : `float`
        Weight in the loss of each star brighter than ``bright_star_mag`` (every other object
        weighs 1 unless a blend weight applies): above 1, calling such a star a galaxy costs more
        than the reverse error, which moves the decision for bright sources toward "star" (the
        data must hold magnitudes).
    bright_star_mag : `float`
        Magnitude (in each set's band) brighter than which a star takes ``bright_star_weight``
        (and a blended galaxy ``blended_galaxy_weight``).
    bright_star_snr : `float`
        Detection S/N below which a star brighter than ``bright_star_mag`` still weighs 1 (0: any
        S/N); the same floor selects the galaxies of ``blended_galaxy_weight``. In the red bands
        and the shortest exposures a star at 22 is near the detection limit, where nothing in the
        pixels can tell it from a galaxy and a weight would only move its probability off
        calibration.
    blended_star_weight : `float`
        Factor on the weight of each star that takes ``bright_star_weight`` and is blended with a
        neighbour (the evaluation's rule, `~lsst.meas.contextnet.evaluation.blending`; the data
        must hold ``blended``): such a star weighs ``bright_star_weight * blended_star_weight``.
        The light of a close galaxy makes a blended star look extended, and these stars are most
        of the bright stars the model calls galaxies.
    blended_galaxy_weight : `float`
        Weight of each blended galaxy brighter than ``bright_star_mag`` with S/N at least
        ``bright_star_snr`` (every other galaxy weighs 1). With ``blended_galaxy_weight`` equal
        to ``blended_star_weight`` the blends weigh more in the loss while the ratio of the
        bright stars' weight to the bright galaxies' weight among them stays
        ``bright_star_weight``, as among the isolated sources: the loss asks for more attention
        to blends without moving their decision toward "star".

    """

    epochs: int = 30
    batch_sets: int = 8
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    val_fraction: float = 0.1
    patience: int = 5
    checkpoint_dir: Path | None = None
    resume: bool = False
    max_minutes: float | None = None
    augment: bool = True
    progress: bool = True
    init_from: Path | None = None
    bright_star_weight: float = 1.0
    bright_star_mag: float = 22.0
    bright_star_snr: float = 0.0
    blended_star_weight: float = 1.0
    blended_galaxy_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_sets < 1:
            raise ValueError(f"batch_sets must be at least 1, got {self.batch_sets}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be positive, got {self.max_minutes}")
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("resume needs a checkpoint directory")
        for name in _WEIGHT_OPTIONS:
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be positive, got {value}")

    def weights_asked(self) -> list[str]:
        """The names of the loss weights that are not 1 (empty: every object weighs 1)."""
        return [name for name in _WEIGHT_OPTIONS if getattr(self, name) != 1.0]

    def loss_description(self) -> str:
        """The loss, in words, for the model card."""
        text = "binary cross-entropy on every object of every set"
        asked = self.weights_asked()
        if not asked:
            return text
        bright = f"brighter than {self.bright_star_mag:g} (true magnitude in the set's band)"
        if self.bright_star_snr > 0:
            bright += f" with detection S/N >= {self.bright_star_snr:g}"
        stars = "bright_star_weight" in asked or "blended_star_weight" in asked
        if stars:
            text += f", stars {bright} weighted {self.bright_star_weight:g}"
            if "blended_star_weight" in asked:
                text += f", {self.bright_star_weight * self.blended_star_weight:g} when blended"
        if "blended_galaxy_weight" in asked:
            text += "; " if stars else ", "
            text += f"blended galaxies {bright} weighted {self.blended_galaxy_weight:g}"
        return text


def object_weights(data: TrainingData, options: TrainingOptions) -> np.ndarray | None:
    """Return the loss weight of every object (`None`: all weigh 1).

    Parameters
    ----------
    data : `TrainingData`
        Training sets; their magnitudes (and, with ``options.bright_star_snr``, their detection
        S/N; with ``options.blended_star_weight`` or ``options.blended_galaxy_weight``, their
        blend flags) are needed when a weight is not 1.
    options : `TrainingOptions`
        Gives ``bright_star_weight``, ``bright_star_mag``, ``bright_star_snr``,
        ``blended_star_weight`` and ``blended_galaxy_weight``.

    Returns
    -------
    weights : `numpy.ndarray` or `None`
        float32 ``(V, M)``: ``bright_star_weight`` for stars brighter than ``bright_star_mag``
        with S/N at least ``bright_star_snr``, times ``blended_star_weight`` for those that are
        blended, ``blended_galaxy_weight`` for blended galaxies as bright and with that S/N, 1
        otherwise.

    Raises
    ------
    ValueError
        If a weight is asked for and the data hold no magnitudes (or no S/N or blend flags when
        they are needed).
    """
    asked = options.weights_asked()
    if not asked:
        return None
    if data.mag is None:
        raise ValueError(
            f"{', '.join(asked)} needs the true magnitudes of the training data ('mag' in every shard)"
        )
    bright = data.mag < options.bright_star_mag
    if options.bright_star_snr > 0:
        if data.snr is None:
            raise ValueError(
                "bright_star_snr needs the detection S/N of the training data ('snr' in every shard)"
            )
        bright &= data.snr >= options.bright_star_snr
    star = data.labels < 0.5
    bright_star = bright & star
    weights = np.where(bright_star, np.float32(options.bright_star_weight), np.float32(1.0))
    blend_factors = {"blended_star_weight": bright_star, "blended_galaxy_weight": bright & ~star}
    for name, selected in blend_factors.items():
        factor = getattr(options, name)
        if factor == 1.0:
            continue
        if data.blended is None:
            raise ValueError(f"{name} needs the blend flags of the training data ('blended' in every shard)")
        weights[selected & data.blended] *= np.float32(factor)
    return weights


@dataclasses.dataclass
class TrainingResult:
    """Outcome of `train_model`."""

    model: Any
    """The eager module with the best weights, on the CPU, in evaluation mode."""

    history: list[dict[str, Any]]
    """Per-epoch record: ``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``, ``seconds``."""

    metrics: dict[str, Any]
    """Validation metrics of the best weights (`lsst.meas.contextnet.evaluation.metrics.compute_metrics`)."""

    training: dict[str, Any]
    """Model-card ``training`` entry (everything but the data and the command line)."""


def _split_visits(n_visits: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split visit indices into training and validation sets, reproducibly."""
    order = np.random.default_rng([seed, 1]).permutation(n_visits)
    n_val = round(val_fraction * n_visits)
    if val_fraction > 0 and n_visits >= 2:
        n_val = min(max(n_val, 1), n_visits - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _make_sets(
    visits: np.ndarray, m_data: int, m: int, rng: np.random.Generator, shuffle: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Cut each visit's sources into random disjoint sets of ``m``; return (visit, indices)."""
    per_visit = m_data // m
    if visits.size == 0:
        return np.empty(0, np.int64), np.empty((0, m), np.int64)
    order = rng.permuted(np.tile(np.arange(m_data), (visits.size, 1)), axis=1)
    index = order[:, : per_visit * m].reshape(visits.size * per_visit, m)
    visit = np.repeat(visits, per_visit)
    if shuffle:
        perm = rng.permutation(visit.size)
        visit, index = visit[perm], index[perm]
    return visit, index


class _Trainer:
    """The steps of `train_model`: set up, resume, one epoch, validation, checkpoint, result.

    Each epoch also times its two halves: building the batches (gathering cutouts, symmetries,
    copies to the device) and the optimizer step (forward, backward, update), so a run shows
    whether data handling or the network bounds it (``history[*]["data_s"]``/``["step_s"]``).
    """

    def __init__(
        self, data: TrainingData, config: Any, options: TrainingOptions, emit: Callable[[str], None]
    ):
        import torch
        from lsst.meas.contextnet.model import build_model
        from lsst.meas.contextnet.modelio import resolve_device

        if config.cutout_size != data.cutout_size:
            raise ValueError(f"config.cutout_size={config.cutout_size} but the data have {data.cutout_size}")
        if config.n_channels != data.n_channels:
            raise ValueError(f"the model takes {config.inputs} but the data have {data.n_channels} channels")
        if config.m > data.m:
            raise ValueError(f"config.m={config.m} exceeds the {data.m} sources per stored set")
        self.data, self.config, self.options, self.emit = data, config, options, emit
        self.device = resolve_device(options.device)
        self.train_visits, self.val_visits = _split_visits(data.n_visits, options.val_fraction, options.seed)
        if self.train_visits.size == 0:
            raise ValueError("no training sets: need more data or a smaller val_fraction")
        self.val_sets = _make_sets(
            self.val_visits, data.m, config.m, np.random.default_rng([options.seed, 2]), False
        )
        self.val_labels = (
            data.labels[self.val_sets[0][:, np.newaxis], self.val_sets[1]] if self.val_sets[0].size else None
        )
        # Seeded initialization without disturbing the caller's global random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(options.seed)
            self.model = build_model(config).to(self.device)
        self.init_from = None
        if options.init_from:
            self.init_from = _warm_start(
                self.model, config, options.init_from, options.seed, data.description, self.val_visits
            )
            if self.init_from["held_out_overlap"]:
                self.emit(
                    f"warning: {self.init_from['held_out_overlap']} of the {self.val_visits.size} held-out "
                    f"sets are sets {options.init_from} was trained on, so the validation loss, the early "
                    "stopping and the card's metrics are optimistic; hold out its own sets (the same --data "
                    "order and --seed) or train on new sets"
                )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=options.lr)
        self.weights = object_weights(data, options)
        self.start_epoch = 0
        self.best_state: dict[str, Any] | None = None
        self.best_loss = math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.history: list[dict[str, Any]] = []
        self.elapsed_before = 0.0
        self.fingerprint = json_compatible(
            {
                "config": config.to_dict(),
                "seed": options.seed,
                "lr": options.lr,
                "batch_sets": options.batch_sets,
                "val_fraction": options.val_fraction,
                "augment": options.augment,
                "n_sets": data.n_visits,
                "shards": data.description.get("shards"),
                # Which data, by content, and how their pixels are normalized.
                "data": [
                    {key: part.get(key) for key in ("directory", "manifest_sha256", "normalization")}
                    for part in data.description.get("parts", [data.description])
                ],
                "m_data": data.m,
                "init_from": self.init_from,
                "loss": options.loss_description(),
            }
        )
        directory = options.checkpoint_dir
        self.checkpoint_path = Path(directory) / _CHECKPOINT_NAME if directory else None

    @property
    def has_validation(self) -> bool:
        return bool(self.val_sets[0].size)

    def resume(self) -> None:
        """Restore the state of an interrupted run from its checkpoint."""
        import torch

        path = self.checkpoint_path
        assert path is not None  # checked by TrainingOptions
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume from at {str(path)!r}")
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state.get("fingerprint") != self.fingerprint:
            raise RuntimeError(
                f"checkpoint {str(path)!r} was written with other data or options "
                f"({state.get('fingerprint')}); not resuming"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.best_state = state["best_state"]
        self.best_loss = float(state["best_loss"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        self.history = list(state["history"])
        self.start_epoch = int(state["epoch"])
        self.elapsed_before = float(state["elapsed_s"])
        self.emit(f"resuming from {path} after epoch {self.start_epoch}")

    @staticmethod
    def loss(logits: Any, labels: Any, weight: Any) -> Any:
        """Mean binary cross-entropy of a batch, each object weighted (`object_weights`)."""
        import torch

        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, weight=weight)

    def batch(
        self, visit: np.ndarray, index: np.ndarray, codes: np.ndarray | None
    ) -> tuple[Any, Any, Any, Any]:
        """Gather one batch of sets (with their symmetries) as tensors on the device.

        Returns the cutouts, positions, labels and loss weights (`None` when every object
        weighs 1).
        """
        import torch

        data = self.data
        cut = data.cutouts[visit[:, np.newaxis], index]
        pos = data.positions[visit[:, np.newaxis], index].copy()
        if codes is not None:
            cut = cut.copy()
            for code in np.unique(codes):
                if code:
                    rows = codes == code
                    cut[rows], pos[rows] = apply_symmetry(cut[rows], pos[rows], int(code))
        rows = (visit[:, np.newaxis], index)
        weight = None if self.weights is None else torch.from_numpy(self.weights[rows]).to(self.device)
        return (
            torch.from_numpy(np.ascontiguousarray(cut)).to(self.device),
            torch.from_numpy(np.ascontiguousarray(pos)).to(self.device),
            torch.from_numpy(data.labels[rows]).to(self.device),
            weight,
        )

    def validate(self) -> tuple[float, np.ndarray]:
        """Validation loss and probabilities of every validation object."""
        import torch

        self.model.eval()
        visits, indices = self.val_sets
        probs = np.empty(indices.shape, dtype=np.float32)
        total = 0.0
        step = self.options.batch_sets
        with torch.no_grad():
            for start in range(0, visits.size, step):
                cut, pos, lab, weight = self.batch(
                    visits[start : start + step], indices[start : start + step], None
                )
                logits = self.model.forward_logits(cut, pos)
                total += float(self.loss(logits, lab, weight)) * lab.numel()
                probs[start : start + len(lab)] = torch.sigmoid(logits).cpu().numpy()
        return total / max(probs.size, 1), probs

    def train_epoch(self, epoch: int, deadline: float) -> dict[str, Any]:
        """One pass over freshly drawn training sets; stops early at ``deadline``."""
        from tqdm import tqdm

        options = self.options
        t_epoch = time.monotonic()
        rng = np.random.default_rng([options.seed, 1000 + epoch])
        visit, index = _make_sets(self.train_visits, self.data.m, self.config.m, rng)
        codes = rng.integers(0, 8, size=visit.size) if options.augment else None
        self.model.train()
        running, n_seen, timed_out, data_s, step_s = 0.0, 0, False, 0.0, 0.0
        bar = tqdm(
            range(0, visit.size, options.batch_sets),
            desc=f"epoch {epoch + 1}/{options.epochs}",
            disable=not options.progress,
            leave=False,
        )
        for start in bar:
            stop = start + options.batch_sets
            t0 = time.perf_counter()
            cut, pos, lab, weight = self.batch(
                visit[start:stop], index[start:stop], codes[start:stop] if codes is not None else None
            )
            t1 = time.perf_counter()
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(self.model.forward_logits(cut, pos), lab, weight)
            loss.backward()
            self.optimizer.step()
            running += float(loss.detach()) * lab.numel()
            n_seen += lab.numel()
            data_s += t1 - t0
            step_s += time.perf_counter() - t1
            bar.set_postfix(loss=f"{running / n_seen:.4f}")
            if time.monotonic() > deadline:
                timed_out = True
                break
        bar.close()
        train_loss = running / max(n_seen, 1)
        if self.has_validation:
            val_loss, probs = self.validate()
            val_accuracy = float(np.mean((probs >= 0.5) == (self.val_labels >= 0.5)))
        else:
            val_loss, val_accuracy = train_loss, math.nan
        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "seconds": time.monotonic() - t_epoch,
            "data_s": data_s,
            "step_s": step_s,
            "n_cutouts": n_seen,
            "complete": not timed_out,
        }
        self.history.append(record)
        self.emit(
            f"epoch {epoch + 1}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
            f"val accuracy {val_accuracy:.4f} ({record['seconds']:.1f} s)"
        )
        improved = (
            self.best_state is None
            or not self.has_validation
            or val_loss < self.best_loss
            or (math.isnan(self.best_loss) and not math.isnan(val_loss))
        )
        if improved:
            self.best_loss, self.best_epoch, self.bad_epochs = val_loss, epoch + 1, 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        else:
            self.bad_epochs += 1
        return record

    def save_checkpoint(self, epoch: int, elapsed_s: float) -> None:
        """Write the state after ``epoch`` epochs atomically (no-op without a checkpoint directory)."""
        import torch

        if self.checkpoint_path is None:
            return
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.checkpoint_path.with_suffix(".tmp")
        torch.save(
            {
                "fingerprint": self.fingerprint,
                "epoch": epoch,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "best_state": self.best_state,
                "best_loss": self.best_loss,
                "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs,
                "history": self.history,
                "elapsed_s": self.elapsed_before + elapsed_s,
            },
            temporary,
        )
        os.replace(temporary, self.checkpoint_path)

    def fit(self) -> str:
        """Run the epochs; return why training stopped."""
        options = self.options
        t_start = time.monotonic()
        deadline = t_start + 60.0 * options.max_minutes if options.max_minutes is not None else math.inf
        if self.has_validation and self.bad_epochs >= options.patience:
            # Resumed from a run that had already stopped early: nothing left to do.
            return "patience"
        for epoch in range(self.start_epoch, options.epochs):
            record = self.train_epoch(epoch, deadline)
            if not record["complete"]:
                self.emit(f"time limit of {options.max_minutes} min reached during epoch {epoch + 1}")
                return "max_minutes"
            self.save_checkpoint(epoch + 1, time.monotonic() - t_start)
            if self.has_validation and self.bad_epochs >= options.patience:
                self.emit(f"no improvement of the validation loss for {self.bad_epochs} epochs: stopping")
                return "patience"
            if time.monotonic() > deadline:
                return "max_minutes"
        return "max_epochs"

    def result(self, stopped: str, total_s: float) -> TrainingResult:
        """The best weights, their validation metrics and the model card's ``training`` entry."""
        import torch
        from lsst.meas.contextnet.evaluation.metrics import compute_metrics
        from lsst.meas.contextnet.model import count_parameters

        if self.best_state is None:
            raise RuntimeError("training ran no epoch (was it already finished before resuming?)")
        self.model.load_state_dict(self.best_state)
        metrics: dict[str, Any] = {}
        if self.has_validation:
            val_loss, probs = self.validate()
            metrics = {
                "validation": {
                    "loss": val_loss,
                    **compute_metrics(self.val_labels.ravel() >= 0.5, probs.ravel()).as_dict(),
                }
            }
        model = self.model.cpu().eval()
        options, history = self.options, self.history
        training = {
            "seed": options.seed,
            "epochs": len(history),
            "epochs_run": len(history),
            "max_epochs": options.epochs,
            "best_epoch": self.best_epoch,
            "stopped": stopped,
            "optimizer": "Adam",
            "lr": options.lr,
            "batch_sets": options.batch_sets,
            "loss": options.loss_description(),
            "augmentation": (
                "per-set symmetries of the square (8), applied to cutouts and positions"
                if options.augment
                else "none"
            ),
            "val_fraction": options.val_fraction,
            "n_train_sets": int(self.train_visits.size),
            "n_val_sets": int(self.val_visits.size),
            "patience": options.patience,
            "init_from": self.init_from,
            "device": str(self.device),
            "n_threads": torch.get_num_threads(),
            "n_parameters": count_parameters(model),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "timings": {
                "total_s": self.elapsed_before + total_s,
                "per_epoch_s": [record["seconds"] for record in history],
                "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            "history": history,
        }
        return TrainingResult(
            model=model, history=history, metrics=json_compatible(metrics), training=json_compatible(training)
        )


def _set_identities(description: Mapping[str, Any]) -> list[tuple[str | None, int]]:
    """Name each set of training data by content: its directory's manifest sha256 and its index there."""
    parts = description.get("parts", [description])
    return [(part.get("manifest_sha256"), index) for part in parts for index in range(int(part["n_sets"]))]


def _held_out_overlap(
    card: Mapping[str, Any], description: Mapping[str, Any], val_visits: np.ndarray
) -> int | None:
    """Count the held-out sets that a starting model was trained on.

    Parameters
    ----------
    card : `~collections.abc.Mapping`
        The starting model's metadata; its ``training`` entry gives its data, seed and
        validation fraction, from which its own split is drawn again.
    description : `~collections.abc.Mapping`
        The description of the data being trained on.
    val_visits : `numpy.ndarray`
        Indices of this run's held-out sets.

    Returns
    -------
    overlap : `int` or `None`
        The number of this run's held-out sets among the starting model's training sets
        (compared by manifest sha256 and index); `None` if its card does not say.
    """
    training = card.get("training", {})
    try:
        theirs = _set_identities(training["data"])
        their_train, _ = _split_visits(len(theirs), float(training["val_fraction"]), int(training["seed"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    trained = {theirs[i] for i in their_train if theirs[i][0] is not None}
    ours = _set_identities(description)
    return int(sum(ours[i] in trained for i in val_visits))


def _warm_start(
    model: Any,
    config: Any,
    path: Path,
    seed: int,
    description: Mapping[str, Any],
    val_visits: np.ndarray,
) -> dict[str, Any]:
    """Load a model file's weights into ``model``; return what the model card records of it.

    A model whose local network is narrower than ``config``'s (fewer convolution channels, local
    features or input channels, nothing else different) is widened to it (`widen_state_dict`).
    The record includes ``held_out_overlap`` (`_held_out_overlap`): how many of this run's
    held-out sets (``val_visits`` of the data ``description``) the model was trained on.
    """
    from lsst.meas.contextnet.model import ContextNetConfig
    from lsst.meas.contextnet.modelio import load_model

    from .widen import WIDENABLE_FIELDS, widen_state_dict

    loaded = load_model(path, "cpu")
    theirs = loaded.metadata.get("config")
    state = loaded.module.state_dict()
    widened = theirs != json_compatible(config.to_dict())
    if widened:
        try:
            state = widen_state_dict(state, ContextNetConfig.from_dict(theirs), config, seed=seed)
        except ValueError as error:
            raise ValueError(
                f"cannot start from {str(path)!r}: its architecture {theirs} is neither the one being "
                f"trained {json_compatible(config.to_dict())} nor a narrower local network of it ({error})"
            ) from None
    model.load_state_dict(state)
    record = {
        "path": str(path),
        "sha256": loaded.sha256,
        "command": loaded.metadata.get("training", {}).get("command"),
        "best_epoch": loaded.metadata.get("training", {}).get("best_epoch"),
        "held_out_overlap": _held_out_overlap(loaded.metadata, description, val_visits),
    }
    if widened:
        narrow = ContextNetConfig.from_dict(theirs).to_dict()
        record["widened_from"] = {key: narrow[key] for key in WIDENABLE_FIELDS}
    return record


def train_model(
    data: TrainingData,
    config: Any,
    options: TrainingOptions,
    log: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Train a ContextNet (or local-only) model.

    Parameters
    ----------
    data : `TrainingData`
        Training sets (see `load_training_data`).
    config : `~lsst.meas.contextnet.model.ContextNetConfig`
        Architecture; ``config.m`` must not exceed ``data.m`` (each stored set is cut into
        ``data.m // config.m`` random disjoint sets, redrawn every epoch) and
        ``config.cutout_size`` must equal ``data.cutout_size``.
    options : `TrainingOptions`
        Optimization options.
    log : callable, optional
        Receives one line per epoch (default: this module's logger at INFO level).

    Returns
    -------
    result : `TrainingResult`
        Best model (lowest validation loss; the last one without validation data), history and
        metrics.

    Raises
    ------
    ValueError
        If the data and the configuration disagree, or no training set remains.
    RuntimeError
        If a CUDA device is requested but not available, or ``resume`` finds an incompatible
        checkpoint.
    FileNotFoundError
        If ``resume`` is set and the checkpoint does not exist.

    Notes
    -----
    Runs are deterministic for a given seed, device and number of threads: the weights are
    initialized after ``torch.manual_seed(seed)`` (in a forked random state, the caller's is left
    alone), and every epoch draws its set partition, order and symmetries from its own
    ``numpy.random.default_rng([seed, 1000 + epoch])``, so a resumed run continues exactly as an
    uninterrupted one would.

    """
    trainer = _Trainer(data, config, options, log if log is not None else _LOG.info)
    if options.resume:
        trainer.resume()
    t_start = time.monotonic()
    stopped = trainer.fit()
    return trainer.result(stopped, time.monotonic() - t_start)


def run_training(
    data_dir: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    config: Any,
    options: TrainingOptions,
    *,
    softening: float = float(DEFAULT_NORMALIZATION["softening"]),
    weights_dtype: str = "float32",
    command: str | None = None,
) -> dict[str, Any]:
    """Load shards, train, and export the model with its model card.

    Parameters
    ----------
    data_dir : `str`, `os.PathLike` or a sequence of them
        Training-data directory (see `load_training_data`), or several whose sets are joined
        (`combine_training_data`), e.g. of different worlds.
    output : `str` or `os.PathLike`
        Model file to write.
    config : `~lsst.meas.contextnet.model.ContextNetConfig`
        Architecture.
    options : `TrainingOptions`
        Optimization options.
    softening : `float`, optional
        Pixel normalization softening (recorded in the model's metadata).
    weights_dtype : `str`, optional
        ``"float32"`` or ``"float16"`` storage of the weights.
    command : `str`, optional
        Command line to record (default: this process's ``sys.argv``).

    Returns
    -------
    metadata : `dict` [`str`, `~typing.Any`]
        The metadata written to the model file.

    """
    from lsst.meas.contextnet.modelio import export_model

    directories = [data_dir] if isinstance(data_dir, str | os.PathLike) else list(data_dir)
    data = combine_training_data(
        [
            load_training_data(directory, softening=softening, inputs=config.inputs)
            for directory in directories
        ]
    )
    _LOG.info(
        "loaded %d sets of %d sources (%d shards) from %s",
        data.n_visits,
        data.m,
        len(data.description["shards"]),
        ", ".join(str(directory) for directory in directories),
    )
    result = train_model(data, config, options)
    training = dict(result.training)
    training["data"] = json_compatible(data.description)
    training["command"] = (
        command if command is not None else shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    )
    metadata = {
        "psf_grid": int(data.description["psf_grid"]),
        "normalization": {**DEFAULT_NORMALIZATION, "softening": softening},
        "training": training,
        "metrics": result.metrics,
    }
    return export_model(result.model, output, metadata, weights_dtype=weights_dtype)
