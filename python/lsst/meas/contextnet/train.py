"""Training ContextNet on simulated cutout sets and exporting the TorchScript model.

The training data are the HDF5 shards written by ``contextnet make-training-data``
(`lsst.meas.contextnet.sim.training`): each shard holds sets of ``m`` cutouts from one simulated
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

__all__ = [
    "TrainingData",
    "TrainingOptions",
    "TrainingResult",
    "add_subcommand",
    "apply_symmetry",
    "load_training_data",
    "run_training",
    "train_model",
]

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .cutouts import DEFAULT_NORMALIZATION
from .psfinputs import DEFAULT_PSF_GRID, interpolate_psf, model_inputs
from .serialization import json_compatible

_LOG = logging.getLogger(__name__)

_CHECKPOINT_NAME = "checkpoint.pt"
_REQUIRED_DATASETS = ("cutouts", "noise_sigma", "positions", "labels")


@dataclasses.dataclass
class TrainingData:
    """Training sets held in memory, pixels already normalized."""

    cutouts: np.ndarray
    """Model inputs, float32, shape ``(V, M, C, S, S)`` (``V`` visits of ``M`` sources, ``C``
    channels built by `lsst.meas.contextnet.psfinputs.model_inputs`)."""

    positions: np.ndarray
    """Position features in ``[-1, 1]``, float32, shape ``(V, M, 2)``."""

    labels: np.ndarray
    """1 for galaxies, 0 for stars, float32, shape ``(V, M)``."""

    description: dict[str, Any]
    """JSON-serializable description of the source (directory, shards, manifest, counts)."""

    @property
    def n_visits(self) -> int:
        """Number of sets (visits)."""
        return int(self.cutouts.shape[0])

    @property
    def m(self) -> int:
        """Sources per stored set."""
        return int(self.cutouts.shape[1])

    @property
    def cutout_size(self) -> int:
        """Side of the cutouts in pixels."""
        return int(self.cutouts.shape[-1])

    @property
    def n_channels(self) -> int:
        """Input channels per source."""
        return int(self.cutouts.shape[2])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_attr(value: Any) -> Any:
    """Convert an HDF5 attribute to a JSON-serializable value."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def load_training_data(
    directory: str | os.PathLike[str],
    softening: float = float(DEFAULT_NORMALIZATION["softening"]),
    inputs: tuple[str, ...] = ("image",),
) -> TrainingData:
    """Read every shard of a training-data directory and build the model's inputs.

    The inputs are made by `lsst.meas.contextnet.psfinputs.model_inputs`, the function the
    classifier task uses, from the stored cutouts, bad-pixel masks, PSF-model grids and
    positions.

    Parameters
    ----------
    directory : `str` or `os.PathLike`
        Directory with ``shard_*.h5`` files (and normally ``manifest.json``) as written by
        `lsst.meas.contextnet.sim.training`.
    softening : `float`, optional
        Softening of `~lsst.meas.contextnet.cutouts.normalize_cutouts`.
    inputs : `tuple` [`str`, ...], optional
        Channels of the model (``("image",)`` or ``("image", "psf")``).

    Returns
    -------
    data : `TrainingData`
        All sets of all shards, in shard order.

    Raises
    ------
    FileNotFoundError
        If the directory does not exist or holds no shard.
    ValueError
        If a shard lacks a dataset, has inconsistent shapes, or shards disagree on the cutout size
        or set size.

    """
    import h5py

    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"training data directory {str(root)!r} does not exist")
    shards = sorted(root.glob("shard_*.h5"))
    if not shards:
        raise FileNotFoundError(f"no shard_*.h5 files in training data directory {str(root)!r}")
    manifest_path = root / "manifest.json"
    manifest: Any = None
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())

    cutouts, positions, labels = [], [], []
    psf_grid = DEFAULT_PSF_GRID
    shape: tuple[int, int] | None = None
    attrs: dict[str, Any] = {}
    for shard in shards:
        with h5py.File(shard, "r") as h5:
            missing = [name for name in _REQUIRED_DATASETS if name not in h5]
            if missing:
                raise ValueError(f"shard {str(shard)!r} lacks the datasets {missing}")
            raw = np.asarray(h5["cutouts"][...], dtype=np.float32)
            sigma = np.asarray(h5["noise_sigma"][...], dtype=np.float32)
            pos = np.asarray(h5["positions"][...], dtype=np.float32)
            lab = np.asarray(h5["labels"][...])
            if "psf" in inputs:
                missing = [name for name in ("bad", "psf_grid", "pixel_xy", "offsets") if name not in h5]
                if missing:
                    raise ValueError(f"shard {str(shard)!r} lacks {missing}, needed by a PSF-aware model")
                psf_data = {name: h5[name][...] for name in ("bad", "psf_grid", "pixel_xy", "offsets")}
                psf_grid = int(psf_data["psf_grid"].shape[1])
                detector_size = int(h5.attrs["detector_size"])
            if shard == shards[0]:
                attrs = {key: _json_attr(value) for key, value in h5.attrs.items() if key != "config"}
        n_sets = raw.shape[0]
        if (
            raw.ndim != 4
            or raw.shape[2] != raw.shape[3]
            or sigma.shape != (n_sets,)
            or pos.shape != raw.shape[:2] + (2,)
            or lab.shape != raw.shape[:2]
        ):
            raise ValueError(
                f"shard {str(shard)!r} has inconsistent shapes: cutouts {raw.shape}, noise_sigma "
                f"{sigma.shape}, positions {pos.shape}, labels {lab.shape}"
            )
        if shape is None:
            shape = (raw.shape[1], raw.shape[2])
        elif (raw.shape[1], raw.shape[2]) != shape:
            raise ValueError(
                f"shard {str(shard)!r} has sets of {raw.shape[1]} cutouts of {raw.shape[2]} pixels, "
                f"earlier shards {shape[0]} of {shape[1]}"
            )
        if not np.isin(lab, (0, 1)).all():
            raise ValueError(f"shard {str(shard)!r} has labels other than 0 and 1")
        normalization = {**DEFAULT_NORMALIZATION, "softening": softening}
        per_set = []
        for index in range(n_sets):
            if "psf" in inputs:
                xy = psf_data["pixel_xy"][index]
                psf = interpolate_psf(
                    psf_data["psf_grid"][index], xy[:, 0], xy[:, 1], detector_size, detector_size
                )
                per_set.append(
                    model_inputs(
                        raw[index],
                        float(sigma[index]),
                        normalization,
                        inputs,
                        bad=psf_data["bad"][index].astype(bool),
                        psf=psf,
                        dx=psf_data["offsets"][index, :, 0],
                        dy=psf_data["offsets"][index, :, 1],
                    )
                )
            else:
                per_set.append(model_inputs(raw[index], float(sigma[index]), normalization, inputs))
        cutouts.append(np.stack(per_set))
        positions.append(pos)
        labels.append(lab.astype(np.float32))
    all_labels = np.concatenate(labels)
    description = {
        "directory": str(root.resolve()),
        "shards": [shard.name for shard in shards],
        "manifest": manifest,
        "manifest_sha256": _sha256(manifest_path) if manifest is not None else None,
        "attrs": attrs,
        "n_sets": int(all_labels.shape[0]),
        "m": int(all_labels.shape[1]),
        "n_objects": int(all_labels.size),
        "galaxy_fraction": float(all_labels.mean()) if all_labels.size else math.nan,
        "psf_grid": psf_grid,
        "inputs": list(inputs),
    }
    return TrainingData(
        cutouts=np.concatenate(cutouts),
        positions=np.concatenate(positions),
        labels=all_labels,
        description=description,
    )


def apply_symmetry(cutouts: np.ndarray, positions: np.ndarray, code: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply one of the 8 symmetries of the square to cutouts and their positions.

    Parameters
    ----------
    cutouts : `numpy.ndarray`
        Cutouts, shape ``(..., S, S)`` indexed ``[y, x]``, source at pixel ``(S // 2, S // 2)``.
    positions : `numpy.ndarray`
        Position features ``(x, y)`` in ``[-1, 1]``, shape ``(..., 2)``.
    code : `int`
        Symmetry, 0 to 7: bit 0 transposes (swaps x and y), bit 1 flips x, bit 2 flips y, applied
        in that order. 0 is the identity; the 8 codes are the 8 distinct symmetries.

    Returns
    -------
    cutouts, positions : `tuple` [`numpy.ndarray`, `numpy.ndarray`]
        Transformed copies.

    Raises
    ------
    ValueError
        If ``code`` is not in 0-7.

    Notes
    -----
    Flips mirror the cutout about its centre pixel ``c = S // 2`` (pixel ``i`` goes to
    ``2c - i``), the pixel the source was centred on, and ``x -> -x`` in the position features,
    as if the whole detector were mirrored. For even ``S`` the row or column at ``2c - 0 = S``
    falls outside the cutout; it is taken from pixel 0 (wrapping), a one-pixel border of sky.

    """
    if code not in range(8):
        raise ValueError(f"symmetry code must be an integer from 0 to 7, got {code!r}")
    out = np.asarray(cutouts)
    pos = np.array(positions, copy=True)
    size = out.shape[-1]
    mirror = (2 * (size // 2) - np.arange(size)) % size
    if code & 1:
        out = np.swapaxes(out, -1, -2)
        pos = pos[..., ::-1].copy()
    if code & 2:
        out = out[..., :, mirror]
        pos[..., 0] = -pos[..., 0]
    if code & 4:
        out = out[..., mirror, :]
        pos[..., 1] = -pos[..., 1]
    return np.ascontiguousarray(out), pos


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


@dataclasses.dataclass
class TrainingResult:
    """Outcome of `train_model`."""

    model: Any
    """The eager module with the best weights, on the CPU, in evaluation mode."""

    history: list[dict[str, Any]]
    """Per-epoch record: ``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``, ``seconds``."""

    metrics: dict[str, Any]
    """Validation metrics of the best weights (`lsst.meas.contextnet.metrics.compute_metrics`)."""

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
    import torch
    from tqdm import tqdm

    from .metrics import compute_metrics
    from .model import build_model, count_parameters
    from .modelio import resolve_device

    emit = log if log is not None else _LOG.info
    if config.cutout_size != data.cutout_size:
        raise ValueError(f"config.cutout_size={config.cutout_size} but the data have {data.cutout_size}")
    if config.n_channels != data.n_channels:
        raise ValueError(f"the model takes {config.inputs} but the data have {data.n_channels} channels")
    if config.m > data.m:
        raise ValueError(f"config.m={config.m} exceeds the {data.m} sources per stored set")
    device = resolve_device(options.device)
    train_visits, val_visits = _split_visits(data.n_visits, options.val_fraction, options.seed)
    if train_visits.size == 0:
        raise ValueError("no training sets: need more data or a smaller val_fraction")
    val_sets = _make_sets(val_visits, data.m, config.m, np.random.default_rng([options.seed, 2]), False)

    # Seeded initialization without disturbing the caller's global random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        model = build_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    start_epoch = 0
    best_state: dict[str, Any] | None = None
    best_loss = math.inf
    best_epoch = -1
    bad_epochs = 0
    history: list[dict[str, Any]] = []
    elapsed_before = 0.0
    fingerprint = {
        "config": config.to_dict(),
        "seed": options.seed,
        "lr": options.lr,
        "batch_sets": options.batch_sets,
        "val_fraction": options.val_fraction,
        "augment": options.augment,
        "n_sets": data.n_visits,
        "m_data": data.m,
    }
    checkpoint_path = Path(options.checkpoint_dir) / _CHECKPOINT_NAME if options.checkpoint_dir else None
    if options.resume:
        assert checkpoint_path is not None  # checked by TrainingOptions
        if not checkpoint_path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume from at {str(checkpoint_path)!r}")
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        if state.get("fingerprint") != json.loads(json.dumps(fingerprint)):
            raise RuntimeError(
                f"checkpoint {str(checkpoint_path)!r} was written with other data or options "
                f"({state.get('fingerprint')}); not resuming"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        best_state = state["best_state"]
        best_loss = float(state["best_loss"])
        best_epoch = int(state["best_epoch"])
        bad_epochs = int(state["bad_epochs"])
        history = list(state["history"])
        start_epoch = int(state["epoch"])
        elapsed_before = float(state["elapsed_s"])
        emit(f"resuming from {checkpoint_path} after epoch {start_epoch}")

    def to_tensors(visit: np.ndarray, index: np.ndarray, codes: np.ndarray | None) -> tuple[Any, Any, Any]:
        cut = data.cutouts[visit[:, np.newaxis], index]
        pos = data.positions[visit[:, np.newaxis], index].copy()
        if codes is not None:
            cut = cut.copy()
            for code in np.unique(codes):
                if code:
                    rows = codes == code
                    cut[rows], pos[rows] = apply_symmetry(cut[rows], pos[rows], int(code))
        lab = data.labels[visit[:, np.newaxis], index]
        return (
            torch.from_numpy(np.ascontiguousarray(cut)).to(device),
            torch.from_numpy(np.ascontiguousarray(pos)).to(device),
            torch.from_numpy(lab).to(device),
        )

    def evaluate() -> tuple[float, np.ndarray]:
        model.eval()
        probs = np.empty(val_sets[1].shape, dtype=np.float32)
        total = 0.0
        with torch.no_grad():
            for start in range(0, val_sets[0].size, options.batch_sets):
                visit = val_sets[0][start : start + options.batch_sets]
                index = val_sets[1][start : start + options.batch_sets]
                cut, pos, lab = to_tensors(visit, index, None)
                logits = model.forward_logits(cut, pos)
                total += float(loss_fn(logits, lab)) * lab.numel()
                probs[start : start + visit.size] = torch.sigmoid(logits).cpu().numpy()
        return total / max(probs.size, 1), probs

    val_labels = data.labels[val_sets[0][:, np.newaxis], val_sets[1]] if val_sets[0].size else np.empty(0)
    t_start = time.monotonic()
    deadline = t_start + 60.0 * options.max_minutes if options.max_minutes is not None else math.inf
    stopped = "max_epochs"
    if val_sets[0].size and bad_epochs >= options.patience:
        # Resumed from a run that had already stopped early: nothing left to do.
        stopped, start_epoch = "patience", options.epochs
    for epoch in range(start_epoch, options.epochs):
        t_epoch = time.monotonic()
        rng = np.random.default_rng([options.seed, 1000 + epoch])
        visit, index = _make_sets(train_visits, data.m, config.m, rng)
        codes = rng.integers(0, 8, size=visit.size) if options.augment else None
        model.train()
        running, n_seen, timed_out = 0.0, 0, False
        batches = range(0, visit.size, options.batch_sets)
        bar = tqdm(
            batches, desc=f"epoch {epoch + 1}/{options.epochs}", disable=not options.progress, leave=False
        )
        for start in bar:
            stop = start + options.batch_sets
            cut, pos, lab = to_tensors(
                visit[start:stop], index[start:stop], codes[start:stop] if codes is not None else None
            )
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model.forward_logits(cut, pos), lab)
            loss.backward()
            optimizer.step()
            running += float(loss.detach()) * lab.numel()
            n_seen += lab.numel()
            bar.set_postfix(loss=f"{running / n_seen:.4f}")
            if time.monotonic() > deadline:
                timed_out = True
                break
        bar.close()
        train_loss = running / max(n_seen, 1)
        if val_sets[0].size:
            val_loss, probs = evaluate()
            val_accuracy = float(np.mean((probs >= 0.5) == (val_labels >= 0.5)))
        else:
            val_loss, val_accuracy = train_loss, math.nan
        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "seconds": time.monotonic() - t_epoch,
            "complete": not timed_out,
        }
        history.append(record)
        emit(
            f"epoch {epoch + 1}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
            f"val accuracy {val_accuracy:.4f} ({record['seconds']:.1f} s)"
        )
        improved = (
            best_state is None
            or not val_sets[0].size
            or val_loss < best_loss
            or (math.isnan(best_loss) and not math.isnan(val_loss))
        )
        if improved:
            best_loss, best_epoch, bad_epochs = val_loss, epoch + 1, 0
            best_state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
        else:
            bad_epochs += 1
        if timed_out:
            stopped = "max_minutes"
            emit(f"time limit of {options.max_minutes} min reached during epoch {epoch + 1}")
            break
        if checkpoint_path is not None:
            checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = checkpoint_path.with_suffix(".tmp")
            torch.save(
                {
                    "fingerprint": fingerprint,
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "best_state": best_state,
                    "best_loss": best_loss,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                    "history": history,
                    "elapsed_s": elapsed_before + time.monotonic() - t_start,
                },
                temporary,
            )
            os.replace(temporary, checkpoint_path)
        if val_sets[0].size and bad_epochs >= options.patience:
            stopped = "patience"
            emit(f"no improvement of the validation loss for {bad_epochs} epochs: stopping")
            break
        if time.monotonic() > deadline:
            stopped = "max_minutes"
            break

    if best_state is None:
        raise RuntimeError("training ran no epoch (was it already finished before resuming?)")
    model.load_state_dict(best_state)
    metrics: dict[str, Any] = {}
    if val_sets[0].size:
        val_loss, probs = evaluate()
        metrics = {
            "validation": {
                "loss": val_loss,
                **compute_metrics(val_labels.ravel() >= 0.5, probs.ravel()).as_dict(),
            }
        }
    model = model.cpu().eval()
    total_s = elapsed_before + time.monotonic() - t_start
    training = {
        "seed": options.seed,
        "epochs": len(history),
        "epochs_run": len(history),
        "max_epochs": options.epochs,
        "best_epoch": best_epoch,
        "stopped": stopped,
        "optimizer": "Adam",
        "lr": options.lr,
        "batch_sets": options.batch_sets,
        "loss": "binary cross-entropy on every object of every set",
        "augmentation": (
            "per-set symmetries of the square (8), applied to cutouts and positions"
            if options.augment
            else "none"
        ),
        "val_fraction": options.val_fraction,
        "n_train_sets": int(train_visits.size),
        "n_val_sets": int(val_visits.size),
        "patience": options.patience,
        "device": str(device),
        "n_threads": torch.get_num_threads(),
        "n_parameters": count_parameters(model),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "timings": {
            "total_s": total_s,
            "per_epoch_s": [record["seconds"] for record in history],
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "history": history,
    }
    return TrainingResult(
        model=model, history=history, metrics=json_compatible(metrics), training=json_compatible(training)
    )


def run_training(
    data_dir: str | os.PathLike[str],
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
    data_dir : `str` or `os.PathLike`
        Training-data directory (see `load_training_data`).
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
    from .modelio import export_model

    data = load_training_data(data_dir, softening=softening, inputs=config.inputs)
    _LOG.info(
        "loaded %d sets of %d sources (%d shards) from %s",
        data.n_visits,
        data.m,
        len(data.description["shards"]),
        data_dir,
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


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(item) for item in text.split(",") if item.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _run(args: argparse.Namespace) -> int:
    """Run ``contextnet train`` from parsed arguments."""
    from .model import ContextNetConfig

    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f"{str(args.output)!r} exists; pass --overwrite to replace it")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {}
    for name in ("conv_channels", "global_widths", "predict_widths", "n_local"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    data_m, cutout_size = _peek_shape(args.data)
    preset_m = ContextNetConfig.preset(args.arch).m
    config = ContextNetConfig.preset(
        args.arch,
        m=args.m if args.m is not None else min(preset_m, data_m),
        cutout_size=cutout_size,
        **overrides,
    )
    options = TrainingOptions(
        epochs=args.epochs,
        batch_sets=args.batch_sets,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        val_fraction=args.val_fraction,
        patience=args.patience,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        max_minutes=args.max_minutes,
        augment=not args.no_augment,
        progress=not args.no_progress,
    )
    metadata = run_training(
        args.data, args.output, config, options, softening=args.softening, weights_dtype=args.weights_dtype
    )
    validation = metadata["metrics"].get("validation", {})
    print(
        f"wrote {args.output}: {metadata['architecture']} m={metadata['m']}, "
        f"{metadata['training']['epochs_run']} epochs, best epoch {metadata['training']['best_epoch']}, "
        f"validation accuracy {validation.get('accuracy')}"
    )
    return 0


def _peek_shape(directory: Path) -> tuple[int, int]:
    """Read the set size and cutout size of the first shard without loading it."""
    import h5py

    shards = sorted(Path(directory).glob("shard_*.h5"))
    if not shards:
        raise FileNotFoundError(f"no shard_*.h5 files in training data directory {str(directory)!r}")
    with h5py.File(shards[0], "r") as h5:
        if "cutouts" not in h5 or h5["cutouts"].ndim != 4:
            raise ValueError(f"shard {str(shards[0])!r} has no 4-d 'cutouts' dataset")
        shape = h5["cutouts"].shape
    return int(shape[1]), int(shape[2])


def add_subcommand(subparsers: Any) -> None:
    """Add the ``train`` subcommand to the ``contextnet`` command.

    Parameters
    ----------
    subparsers : `argparse._SubParsersAction`
        The subparsers of the top-level parser.

    """
    from .model import ARCHITECTURES

    parser = subparsers.add_parser(
        "train",
        help="train ContextNet on simulated cutout sets and export the TorchScript model",
        description=(
            "Train ContextNet (or the local-only baseline) on training-data shards and write a "
            "TorchScript model file with its model card."
        ),
    )
    parser.add_argument("--data", type=Path, required=True, help="directory of shard_*.h5 training files")
    parser.add_argument("--output", type=Path, required=True, help="model file to write (MODEL.pt)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        default="paper",
        help="architecture (lsst.meas.contextnet.model.ContextNetConfig.preset): the paper's, the paper's "
        "with a light local CNN, local-only (no context), light-pool (pooling context), psf-concat and "
        "psf-pool (PSF-aware inputs; psf-pool is the shipped model's)",
    )
    parser.add_argument(
        "--m",
        type=int,
        default=None,
        help="objects per set (default: the preset's, at most the shards' m; a pooling network "
        "accepts any number at inference)",
    )
    parser.add_argument("--conv-channels", type=_int_list, default=None, help="override, e.g. 16,32")
    parser.add_argument("--n-local", type=int, default=None, help="override the local feature count (20)")
    parser.add_argument("--global-widths", type=_int_list, default=None, help="override, e.g. 1000,1000,1000")
    parser.add_argument("--predict-widths", type=_int_list, default=None, help="override, e.g. 100,100")
    parser.add_argument("--epochs", type=int, default=30, help="maximum number of epochs (default 30)")
    parser.add_argument("--batch-sets", type=int, default=8, help="sets per optimizer step (default 8)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--val-fraction", type=float, default=0.1, help="fraction of sets held out (default 0.1)"
    )
    parser.add_argument(
        "--patience", type=int, default=5, help="early-stopping patience in epochs (default 5)"
    )
    parser.add_argument(
        "--checkpoint-dir", type=Path, default=None, help="write checkpoint.pt here each epoch"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir"
    )
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="stop training after this many minutes"
    )
    parser.add_argument(
        "--softening",
        type=float,
        default=float(DEFAULT_NORMALIZATION["softening"]),
        help="pixel normalization: arcsinh(pixel / (noise * softening)) (default 3)",
    )
    parser.add_argument(
        "--weights-dtype",
        choices=("float32", "float16"),
        default="float32",
        help="storage precision of the weights in the model file (default float32)",
    )
    parser.add_argument("--no-augment", action="store_true", help="disable the symmetry augmentation")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_run)
