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

"""Reproduce the paper's Table 1 on our simulator: what PSF variation does to a local-only CNN.

Kennamer et al. (2018), section 2.2 and Table 1: a standard CNN that classifies each cutout on
its own does well when one PSF blurs everything, slightly worse when the PSF varies across the
detector, and fails when the PSF also varies between exposures, because then a star under a
wide PSF can look more extended than a galaxy under a narrow one. ContextNet (section 3) gets
the PSF from the other sources of the exposure and recovers.

`reproduce_table1` trains and tests four models on data from the fast training-data generator
(`lsst.meas.contextnet.sim.generator`):

===  ==================  ====================  =====================  ==========================
row  model               PSF across detector   PSF between visits     generator ``psf_variation``
===  ==================  ====================  =====================  ==========================
a    local-only CNN      constant              constant               ``"none"``
b    local-only CNN      varying               constant               ``"spatial"``
c    local-only CNN      varying               varying                ``"full"``
d    ContextNet          varying               varying                ``"full"``
===  ==================  ====================  =====================  ==========================

The default sizes (500 training and 100 test sets of ``m = 200`` sources per PSF variation, 10
epochs) take about 20-30 minutes on a 2-core CPU; the paper's scale is a matter of larger
``--train-sets`` and ``--m``.

Every row's training data come from the generator with that variation and the training seed
``2 * seed``; its test data from the same generator with the test seed ``2 * seed + 1`` (sets
never seen in training). Rows c and d share their training and test data. Every row uses the
same architecture family (the light local CNN by default), the same set size ``m``, optimizer,
epochs and time limit (`lsst.meas.contextnet.training.trainer.train_model`). Test predictions come from
`lsst.meas.contextnet.ensemble.ensemble_predict` on each test set (one simulated visit):
ContextNet averages ``n_p`` random orderings of the visit's sources, the local-only model is
run once per object (its prediction does not depend on the other objects). Metrics come from
`lsst.meas.contextnet.evaluation.metrics` (accuracy, balanced accuracy, AUC, accuracy in magnitude bins),
with a standard error from the spread of the per-visit accuracies (objects of one visit share a
PSF, so they are not independent).

The command ``contextnet reproduce-table1 --output DIR`` writes ``DIR/table1.json`` (everything),
``DIR/table1.csv`` (one line per row), ``DIR/table1.md`` (the table with the exact command and
settings), ``DIR/table1.rst`` (the same table for Sphinx), ``DIR/predictions.npz`` (per-object
test scores) and, unless told otherwise, the four trained models in ``DIR/models``.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAG_EDGES",
    "DEFAULT_PSF_FWHM_EDGES",
    "FORMAT_VERSION",
    "ROWS",
    "Table1Row",
    "Table1Settings",
    "reproduce_table1",
]

import dataclasses
import json
import math
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from lsst.meas.contextnet.serialization import json_compatible
from lsst.meas.contextnet.tools.table1report import (
    _fmt,
    _format_number,
    _join,
    _write_csv,
    format_markdown,
    format_rst,
)

if TYPE_CHECKING:
    from lsst.meas.contextnet.model import ContextNetConfig
    from lsst.meas.contextnet.sim.generator import TrainingDataConfig

DEFAULT_MAG_EDGES: tuple[float, ...] = (22.0, 23.0, 24.0)
"""Inner edges of the magnitude bins of the table: < 22, 22-23, 23-24, >= 24."""

DEFAULT_PSF_FWHM_EDGES: tuple[float, ...] = (0.7, 0.9, 1.1)
"""Inner edges (arcsec) of the PSF FWHM bins of the secondary table."""

FORMAT_VERSION = 1
"""Version of the layout of ``table1.json``."""

# Outer edges that enclose every magnitude or FWHM (metrics.compare_classifiers needs finite edges).
_OUTER_LOW, _OUTER_HIGH = -100.0, 100.0
_ARCHS = ("light", "paper")


@dataclasses.dataclass(frozen=True)
class Table1Row:
    """One row of the table: a model and the PSF variation of its training and test data."""

    key: str
    """Short name: ``"a"`` ... ``"d"``."""

    model: str
    """``"local-only"`` or ``"contextnet"``."""

    psf_variation: str
    """Generator mode, ``"none"``, ``"spatial"`` or ``"full"``."""

    psf_spatial: str
    """PSF across the detector, ``"constant"`` or ``"varying"`` (the paper's first column)."""

    psf_temporal: str
    """PSF between visits, ``"constant"`` or ``"varying"`` (the paper's second column)."""

    @property
    def label(self) -> str:
        """Human-readable name of the row."""
        name = "ContextNet" if self.model == "contextnet" else "local-only CNN"
        return f"({self.key}) {name}"


ROWS: tuple[Table1Row, ...] = (
    Table1Row("a", "local-only", "none", "constant", "constant"),
    Table1Row("b", "local-only", "spatial", "varying", "constant"),
    Table1Row("c", "local-only", "full", "varying", "varying"),
    Table1Row("d", "contextnet", "full", "varying", "varying"),
)
"""The rows of the table, in order."""


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


@dataclasses.dataclass(frozen=True)
class Table1Settings:
    """Sizes, seeds and options of a Table 1 reproduction.

    Parameters
    ----------
    train_sets : `int`
        Training sets (simulated visits) per PSF variation; 10 per cent are held out for
        validation (early stopping).
    test_sets : `int`
        Test sets (visits) per PSF variation.
    m : `int`
        Sources per set, in the data and in ContextNet's global network.
    epochs : `int`
        Maximum epochs of every model.
    max_minutes_per_model : `float` or `None`
        Training time limit of every model (`None`: no limit). The default is a safety net that
        the default sizes do not reach on a 2-core machine; a run stopped by it depends on the
        machine's speed (``stopped`` is then ``"max_minutes"`` in the result).
    seed : `int`
        Master seed: training data ``2 * seed``, test data ``2 * seed + 1``, weights ``seed``.
    processes : `int`
        Worker processes of the data generator.
    arch : `str`
        Architecture family: ``"light"`` (the light local CNN) or ``"paper"`` (the paper's local
        CNN); the local-only rows use the same local CNN as ContextNet.
    n_p : `int`
        Minimum number of sets per object in ContextNet's ensembled test predictions.
    batch_sets : `int`
        Sets per optimizer step.
    lr : `float`
        Adam learning rate.
    patience : `int`
        Early-stopping patience in epochs.
    mag_edges : `tuple` [`float`, ...]
        Inner edges of the magnitude bins (AB mag).
    psf_fwhm_edges : `tuple` [`float`, ...]
        Inner edges of the PSF FWHM bins (arcsec) of the secondary table.
    device : `str`
        Torch device (``"auto"``, ``"cpu"``, ``"cuda"`` ...).
    threads : `int` or `None`
        Torch CPU threads (`None`: leave torch's setting).
    model_overrides : `dict` [`str`, `typing.Any`]
        `~lsst.meas.contextnet.model.ContextNetConfig` fields to change in every model (e.g.
        ``conv_channels``, ``n_local``, ``global_widths``, ``predict_widths``).
    detector_size : `int`
        Detector side in pixels of the generator.
    save_models : `bool`
        Export the four trained models to ``OUTPUT/models``.
    keep_data : `bool`
        Keep the generated data in ``OUTPUT/data`` (otherwise removed at the end). Kept data
        whose manifest matches are reused by a later run.
    progress : `bool`
        Show progress bars.

    Raises
    ------
    ValueError
        If a value is out of range.
    """

    train_sets: int = 500
    test_sets: int = 100
    m: int = 200
    epochs: int = 10
    max_minutes_per_model: float | None = 10.0
    seed: int = 0
    processes: int = 2
    arch: str = "light"
    n_p: int = 5
    batch_sets: int = 8
    lr: float = 1e-3
    patience: int = 5
    mag_edges: tuple[float, ...] = DEFAULT_MAG_EDGES
    psf_fwhm_edges: tuple[float, ...] = DEFAULT_PSF_FWHM_EDGES
    device: str = "auto"
    threads: int | None = None
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    detector_size: int = 4096
    save_models: bool = True
    keep_data: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        minimums = {
            "train_sets": 2,
            "test_sets": 1,
            "m": 2,
            "epochs": 1,
            "seed": 0,
            "processes": 1,
            "n_p": 1,
            "batch_sets": 1,
            "patience": 1,
            "detector_size": 32,
        }
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if self.threads is not None and (not _is_int(self.threads) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {self.threads!r}")
        if self.max_minutes_per_model is not None and not (
            isinstance(self.max_minutes_per_model, int | float)
            and math.isfinite(self.max_minutes_per_model)
            and self.max_minutes_per_model > 0
        ):
            raise ValueError(
                f"max_minutes_per_model must be positive or None, got {self.max_minutes_per_model!r}"
            )
        if self.arch not in _ARCHS:
            raise ValueError(f"arch must be one of {_ARCHS}, got {self.arch!r}")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        for name in ("mag_edges", "psf_fwhm_edges"):
            edges = tuple(float(x) for x in getattr(self, name))
            if not edges or any(not math.isfinite(x) for x in edges) or np.any(np.diff(edges) <= 0):
                raise ValueError(f"{name} must be finite and strictly increasing, got {edges!r}")
            if edges[0] <= _OUTER_LOW or edges[-1] >= _OUTER_HIGH:
                raise ValueError(f"{name} must lie in ({_OUTER_LOW}, {_OUTER_HIGH}), got {edges!r}")
            object.__setattr__(self, name, edges)
        unknown = set(self.model_overrides) - {
            "conv_channels",
            "kernel_size",
            "pool",
            "n_local",
            "global_widths",
            "predict_widths",
        }
        if unknown:
            raise ValueError(f"model_overrides may not set {sorted(unknown)}")
        # Fail now, not after generating data, if an override is invalid.
        for row in ROWS:
            self.model_config(row)

    @property
    def train_seed(self) -> int:
        """Master seed of the training data (every PSF variation)."""
        return 2 * self.seed

    @property
    def test_seed(self) -> int:
        """Master seed of the test data (every PSF variation); never equal to `train_seed`."""
        return 2 * self.seed + 1

    def data_config(self, psf_variation: str) -> TrainingDataConfig:
        """Generator configuration of one PSF variation.

        Parameters
        ----------
        psf_variation : `str`
            ``"none"``, ``"spatial"`` or ``"full"``.

        Returns
        -------
        config : `~lsst.meas.contextnet.sim.generator.TrainingDataConfig`
            The generator's defaults with this ``m``, detector size and variation.
        """
        from lsst.meas.contextnet.sim.generator import TrainingDataConfig

        return TrainingDataConfig(m=self.m, detector_size=self.detector_size, psf_variation=psf_variation)

    def model_config(self, row: Table1Row) -> ContextNetConfig:
        """Architecture of one row's model.

        Parameters
        ----------
        row : `Table1Row`
            The row.

        Returns
        -------
        config : `~lsst.meas.contextnet.model.ContextNetConfig`
            ContextNet (``arch`` preset) or the local-only network with the same local CNN and
            prediction network; ``m`` is the set size of the data.
        """
        from lsst.meas.contextnet.model import ContextNetConfig

        overrides = dict(self.model_overrides)
        if row.model == "contextnet":
            return ContextNetConfig.preset(self.arch, m=self.m, **overrides)
        if self.arch == "paper":
            base = ContextNetConfig.preset("paper")
            overrides = {"conv_channels": base.conv_channels, "pool": base.pool, **overrides}
            overrides["architecture"] = "local-only-paper"
        return ContextNetConfig.preset("local-only", m=self.m, **overrides)

    def command(self, output: str | Path) -> str:
        """Return the ``contextnet reproduce-table1`` command that reproduces this run exactly.

        Parameters
        ----------
        output : `str` or `pathlib.Path`
            Output directory.

        Returns
        -------
        command : `str`
            Shell command with every setting explicit.
        """
        args = ["contextnet", "reproduce-table1", "--output", str(output)]
        args += ["--train-sets", str(self.train_sets), "--test-sets", str(self.test_sets)]
        args += ["--m", str(self.m), "--epochs", str(self.epochs)]
        args += ["--max-minutes-per-model", _format_number(self.max_minutes_per_model)]
        args += ["--seed", str(self.seed), "--processes", str(self.processes), "--arch", self.arch]
        args += ["--n-p", str(self.n_p), "--batch-sets", str(self.batch_sets), "--lr", repr(self.lr)]
        args += ["--patience", str(self.patience), "--mag-edges", _join(self.mag_edges)]
        args += ["--psf-fwhm-edges", _join(self.psf_fwhm_edges), "--device", self.device]
        args += ["--detector-size", str(self.detector_size)]
        if self.threads is not None:
            args += ["--threads", str(self.threads)]
        for name, value in sorted(self.model_overrides.items()):
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                args += [flag] if value else []
            elif isinstance(value, Sequence):
                args += [flag, _join(value)]
            else:
                args += [flag, str(value)]
        if not self.save_models:
            args.append("--no-save-models")
        if self.keep_data:
            args.append("--keep-data")
        return shlex.join(args)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-compatible dictionary.

        Returns
        -------
        settings : `dict` [`str`, `typing.Any`]
            Field name to value (tuples as lists), plus the derived seeds.
        """
        data = dataclasses.asdict(self)
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
        data["model_overrides"] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in self.model_overrides.items()
        }
        data["train_seed"] = self.train_seed
        data["test_seed"] = self.test_seed
        return data


@dataclasses.dataclass
class _TestData:
    """Test sets of one PSF variation, pixels normalized as in training."""

    cutouts: np.ndarray  # (V, m, S, S) float32
    positions: np.ndarray  # (V, m, 2) float32
    labels: np.ndarray  # (V, m) bool
    mag: np.ndarray  # (V, m) float32
    psf_fwhm: np.ndarray  # (V, m) float32


def _bin_specs(inner: Sequence[float], unit: str = "") -> list[dict[str, Any]]:
    """Describe the bins ``< e0, e0-e1, ..., >= e_last`` for JSON and table headers."""
    edges = [_OUTER_LOW, *inner, _OUTER_HIGH]
    specs = []
    for i in range(len(edges) - 1):
        lo, hi = edges[i], edges[i + 1]
        if i == 0:
            key, label = f"lt{_format_number(hi)}", f"< {_format_number(hi)}{unit}"
        elif i == len(edges) - 2:
            key, label = f"ge{_format_number(lo)}", f">= {_format_number(lo)}{unit}"
        else:
            key = f"{_format_number(lo)}-{_format_number(hi)}"
            label = f"{_format_number(lo)}-{_format_number(hi)}{unit}"
        specs.append(
            {
                "key": key,
                "label": label,
                "lo": None if i == 0 else lo,
                "hi": None if i == len(edges) - 2 else hi,
            }
        )
    return specs


def _ensure_data(
    directory: Path,
    n_sets: int,
    config: TrainingDataConfig,
    seed: int,
    processes: int,
    progress: bool,
) -> bool:
    """Generate a data set unless ``directory`` already holds exactly this one.

    Returns whether existing data were reused.
    """
    from lsst.meas.contextnet.sim.generator import write_training_data
    from lsst.meas.contextnet.training.shards import MANIFEST_NAME, read_manifest

    if (directory / MANIFEST_NAME).is_file():
        try:
            manifest = read_manifest(directory)
        except (FileNotFoundError, ValueError):
            manifest = None
        if (
            manifest is not None
            and manifest.get("n_sets") == n_sets
            and manifest.get("seed") == seed
            and manifest.get("config") == config.to_dict()
        ):
            return True
    write_training_data(
        directory, n_sets, config, seed, processes=processes, progress=progress, overwrite=True
    )
    return False


def _load_test_data(directory: Path) -> _TestData:
    """Read test sets with their magnitudes and normalize the pixels as training does."""
    from lsst.meas.contextnet.cutouts import DEFAULT_NORMALIZATION, normalize_cutouts
    from lsst.meas.contextnet.training.shards import iter_training_shards

    softening = float(DEFAULT_NORMALIZATION["softening"])  # type: ignore[arg-type]
    parts: dict[str, list[np.ndarray]] = {key: [] for key in ("cutouts", "positions", "labels", "mag", "psf")}
    for shard in iter_training_shards(directory):
        parts["cutouts"].append(normalize_cutouts(shard["cutouts"], shard["noise_sigma"], softening))
        parts["positions"].append(np.asarray(shard["positions"], dtype=np.float32))
        parts["labels"].append(np.asarray(shard["labels"]) == 1)
        parts["mag"].append(np.asarray(shard["mag"], dtype=np.float32))
        parts["psf"].append(np.asarray(shard["psf_fwhm"], dtype=np.float32))
    return _TestData(
        cutouts=np.concatenate(parts["cutouts"]),
        positions=np.concatenate(parts["positions"]),
        labels=np.concatenate(parts["labels"]),
        mag=np.concatenate(parts["mag"]),
        psf_fwhm=np.concatenate(parts["psf"]),
    )


def _predict(
    model: Any, test: _TestData, n_p: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Ensembled predictions per test visit; returns (mean, std), each of shape (V, m)."""
    from lsst.meas.contextnet.ensemble import ensemble_predict

    means = np.empty(test.labels.shape, dtype=np.float32)
    stds = np.empty(test.labels.shape, dtype=np.float32)
    for visit in range(test.labels.shape[0]):
        result = ensemble_predict(model, test.cutouts[visit], test.positions[visit], n_p=n_p, seed=rng)
        means[visit], stds[visit] = result.mean, result.std
    return means, stds


def _binned(table: Any, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-bin entries (bins >= 0) of a `compare_classifiers` table of one classifier."""
    out = []
    for spec, row in zip(specs, [r for r in table if r["bin"] >= 0], strict=True):
        out.append(
            {
                "key": spec["key"],
                "label": spec["label"],
                "n": int(row["n"]),
                "n_galaxy": int(row["n_galaxy"]),
                "accuracy": json_compatible(float(row["accuracy"])),
                "balanced_accuracy": json_compatible(float(row["balanced_accuracy"])),
                "auc": json_compatible(float(row["auc"])),
            }
        )
    return out


def _evaluate(
    row: Table1Row,
    test: _TestData,
    score: np.ndarray,
    settings: Table1Settings,
) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics of one row's test predictions; also returns the per-visit accuracies."""
    from lsst.meas.contextnet.evaluation.metrics import compare_classifiers, compute_metrics

    labels = test.labels.ravel()
    overall = compute_metrics(labels, score.ravel()).as_dict()
    mag_specs = _bin_specs(settings.mag_edges)
    psf_specs = _bin_specs(settings.psf_fwhm_edges, '"')
    by_mag = compare_classifiers(
        labels,
        {row.key: score.ravel()},
        test.mag.ravel(),
        mag_bins=[_OUTER_LOW, *settings.mag_edges, _OUTER_HIGH],
        include_overall=False,
    )
    by_psf = compare_classifiers(
        labels,
        {row.key: score.ravel()},
        test.psf_fwhm.ravel(),
        mag_bins=[_OUTER_LOW, *settings.psf_fwhm_edges, _OUTER_HIGH],
        include_overall=False,
    )
    per_visit = np.array(
        [compute_metrics(test.labels[v], score[v]).accuracy for v in range(test.labels.shape[0])]
    )
    n_visits = per_visit.size
    se = float(np.std(per_visit, ddof=1) / math.sqrt(n_visits)) if n_visits > 1 else math.nan
    metrics = {key: json_compatible(value) for key, value in overall.items()}
    metrics["accuracy_se"] = json_compatible(se)
    return {
        "metrics": metrics,
        "by_mag": _binned(by_mag, mag_specs),
        "by_psf_fwhm": _binned(by_psf, psf_specs),
    }, per_visit


def _pattern(rows: list[dict[str, Any]], per_visit: dict[str, np.ndarray]) -> dict[str, Any]:
    """Summarize whether the paper's pattern holds: a > c for local-only, d > c (ContextNet)."""
    acc = {row["key"]: row["metrics"]["accuracy"] for row in rows}
    se = {row["key"]: row["metrics"]["accuracy_se"] for row in rows}
    drop = acc["a"] - acc["c"]
    gain = acc["d"] - acc["c"]
    # a and c have independent test sets; c and d share theirs (paired per-visit differences).
    se_drop = math.hypot(se["a"] or 0.0, se["c"] or 0.0)
    diff = per_visit["d"] - per_visit["c"]
    se_gain = float(np.std(diff, ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else math.nan
    holds = bool(drop > 2 * se_drop and gain > 2 * se_gain) if math.isfinite(se_gain) else False
    return {
        "local_only_drop_a_to_c": drop,
        "local_only_drop_a_to_c_se": se_drop,
        "local_only_drop_a_to_b": acc["a"] - acc["b"],
        "contextnet_gain_over_c": gain,
        "contextnet_gain_over_c_se": json_compatible(se_gain),
        "contextnet_minus_a": acc["d"] - acc["a"],
        "recovered_fraction": json_compatible(gain / drop) if drop != 0 else None,
        "holds": holds,
        "definition": (
            "accuracy(a) - accuracy(c) > 2 SE and accuracy(d) - accuracy(c) > 2 SE "
            "(SE from per-visit accuracies; paired for c and d, which share their test sets)"
        ),
    }


def reproduce_table1(
    output: str | Path,
    settings: Table1Settings,
    *,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train and test the four models of Table 1 and write the tables.

    Parameters
    ----------
    output : `str` or `pathlib.Path`
        Output directory (created if missing).
    settings : `Table1Settings`
        Sizes, seeds and options.
    overwrite : `bool`, optional
        Replace an existing ``table1.json`` in ``output``.
    log : callable, optional
        Receives progress lines (default: print to standard error).

    Returns
    -------
    result : `dict` [`str`, `typing.Any`]
        The content of ``table1.json``: ``command``, ``settings``, ``environment``,
        ``mag_bins``, ``psf_fwhm_bins``, ``rows`` (per row: ``metrics`` with ``n``,
        ``accuracy``, ``accuracy_se``, ``balanced_accuracy``, ``auc`` ...; ``by_mag`` and
        ``by_psf_fwhm``; ``train``, ``test`` and ``training`` descriptions), ``pattern`` and
        ``wall_seconds``.

    Raises
    ------
    FileExistsError
        If ``output`` already holds ``table1.json`` and ``overwrite`` is false.
    """
    import torch
    from lsst.meas.contextnet.modelio import code_version, export_model, file_sha256
    from lsst.meas.contextnet.training.data import load_training_data
    from lsst.meas.contextnet.training.trainer import TrainingOptions, train_model

    t_start = time.monotonic()
    emit = log if log is not None else (lambda text: print(text, file=sys.stderr, flush=True))
    root = Path(output)
    json_path = root / "table1.json"
    if json_path.exists() and not overwrite:
        raise FileExistsError(f"{json_path} exists; pass overwrite (--overwrite) to replace it")
    root.mkdir(parents=True, exist_ok=True)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)

    def stage(text: str) -> None:
        emit(f"[{(time.monotonic() - t_start) / 60:5.1f} min] {text}")

    options = TrainingOptions(
        epochs=settings.epochs,
        batch_sets=settings.batch_sets,
        lr=settings.lr,
        seed=settings.seed,
        device=settings.device,
        patience=settings.patience,
        max_minutes=settings.max_minutes_per_model,
        progress=settings.progress,
    )
    command = settings.command(output)
    rows: list[dict[str, Any]] = []
    per_visit: dict[str, np.ndarray] = {}
    predictions: dict[str, np.ndarray] = {}
    device_used = "cpu"
    variations = list(dict.fromkeys(row.psf_variation for row in ROWS))
    for variation in variations:
        data_config = settings.data_config(variation)
        train_dir = root / "data" / variation / "train"
        test_dir = root / "data" / variation / "test"
        for directory, n_sets, seed, what in (
            (train_dir, settings.train_sets, settings.train_seed, "training"),
            (test_dir, settings.test_sets, settings.test_seed, "test"),
        ):
            stage(f"psf_variation={variation!r}: {what} data, {n_sets} sets of {settings.m} (seed {seed})")
            if _ensure_data(directory, n_sets, data_config, seed, settings.processes, settings.progress):
                stage(f"  reusing the matching data in {directory}")
        train_data = load_training_data(train_dir)
        test = _load_test_data(test_dir)
        predictions[f"{variation}_labels"] = test.labels
        predictions[f"{variation}_mag"] = test.mag
        predictions[f"{variation}_psf_fwhm"] = test.psf_fwhm
        for row in (r for r in ROWS if r.psf_variation == variation):
            config = settings.model_config(row)
            stage(f"row {row.key}: training {config.architecture} on psf_variation={variation!r}")
            result = train_model(
                train_data, config, options, log=lambda text, k=row.key: stage(f"  {k}: {text}")
            )
            device_used = result.training["device"]
            n_p = settings.n_p if config.context else 1
            stage(f"row {row.key}: predicting {test.labels.size} test objects (n_p={n_p})")
            rng = np.random.default_rng([settings.seed, 3, ROWS.index(row)])
            mean, std = _predict(result.model, test, n_p, rng)
            evaluation, visit_acc = _evaluate(row, test, mean, settings)
            per_visit[row.key] = visit_acc
            predictions[f"{row.key}_score"] = mean
            predictions[f"{row.key}_score_std"] = std
            validation = result.metrics.get("validation", {})
            entry: dict[str, Any] = {
                "key": row.key,
                "label": row.label,
                "model": row.model,
                "model_name": "ContextNet" if row.model == "contextnet" else "local-only CNN",
                "architecture": config.architecture,
                "model_config": config.to_dict(),
                "psf_variation": variation,
                "psf_spatial": row.psf_spatial,
                "psf_temporal": row.psf_temporal,
                "n_p": n_p,
                **evaluation,
                "train": {
                    "n_sets": train_data.n_visits,
                    "m": train_data.m,
                    "n_objects": train_data.description["n_objects"],
                    "galaxy_fraction": train_data.description["galaxy_fraction"],
                    "seed": settings.train_seed,
                    "generator_config": data_config.to_dict(),
                },
                "test": {
                    "n_sets": int(test.labels.shape[0]),
                    "m": int(test.labels.shape[1]),
                    "seed": settings.test_seed,
                },
                "training": {
                    "epochs_run": result.training["epochs_run"],
                    "best_epoch": result.training["best_epoch"],
                    "stopped": result.training["stopped"],
                    "seconds": result.training["timings"]["total_s"],
                    "n_parameters": result.training["n_parameters"],
                    "val_accuracy": json_compatible(validation.get("accuracy")),
                    "val_loss": json_compatible(validation.get("loss")),
                    "history": result.history,
                },
            }
            if settings.save_models:
                path = root / "models" / f"table1_{row.key}_{config.architecture}.pt"
                training = dict(result.training)
                training["data"] = {
                    key: value for key, value in train_data.description.items() if key != "manifest"
                }
                training["command"] = command
                export_model(
                    result.model,
                    path,
                    {
                        "training": training,
                        "metrics": {**result.metrics, "test": entry["metrics"]},
                    },
                )
                entry["model_file"] = str(path.relative_to(root))
                entry["model_sha256"] = file_sha256(path)
            rows.append(entry)
            metrics = entry["metrics"]
            stage(
                f"row {row.key}: accuracy {_fmt(metrics['accuracy'])} ± {_fmt(metrics['accuracy_se'])}, "
                f"AUC {_fmt(metrics['auc'])} on {metrics['n']} test objects"
            )
        del train_data, test

    if not settings.keep_data:
        shutil.rmtree(root / "data", ignore_errors=True)
    result_doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "title": "Table 1 of Kennamer et al. (2018) reproduced on the meas_contextnet simulator",
        "command": command,
        "settings": settings.to_dict(),
        "environment": {
            "device": device_used,
            "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "platform": platform.platform(),
            "code_version": code_version(),
        },
        "mag_bins": _bin_specs(settings.mag_edges),
        "psf_fwhm_bins": _bin_specs(settings.psf_fwhm_edges, '"'),
        "rows": rows,
        "pattern": _pattern(rows, per_visit),
        "wall_seconds": time.monotonic() - t_start,
    }
    # NaN (e.g. an AUC with one class only) and infinities become null: strict JSON.
    result_doc = json_compatible(result_doc)
    np.savez_compressed(root / "predictions.npz", **predictions)
    _write_csv(root / "table1.csv", result_doc)
    (root / "table1.md").write_text(format_markdown(result_doc))
    (root / "table1.rst").write_text(format_rst(result_doc))
    json_path.write_text(json.dumps(result_doc, indent=2, allow_nan=False) + "\n")
    stage(f"wrote {json_path}, table1.csv, table1.md, table1.rst and predictions.npz")
    return result_doc
