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

"""The ContextNet classifier `~lsst.pipe.base.PipelineTask`: P(galaxy) for every source of a visit.

`ContextNetClassifierTask` reads a calibrated single-visit image and its source table, cuts a
cutout around every source (`lsst.meas.contextnet.cutouts.extract_cutouts`), runs a TorchScript
ContextNet over ensembled random sets of sources (`lsst.meas.contextnet.ensemble.ensemble_predict`)
and writes one row per source with ``classification_galaxyProb`` beside the DM extendedness
baseline columns.
"""

from __future__ import annotations

__all__ = [
    "CLASSIFICATION_COLUMNS",
    "ContextNetClassifierConfig",
    "ContextNetClassifierConnections",
    "ContextNetClassifierTask",
    "PEDESTAL_SAMPLE_PIXELS",
    "cpu_threads",
    "default_model_path",
    "model_file",
    "seed_from_data_id",
]

import contextlib
import dataclasses
import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lsst.pipe.base.connectionTypes as cT
import numpy as np
from astropy.table import Column, MaskedColumn, Table
from lsst.meas.contextnet.butlermodel import MODEL_DATASET_TYPE, butler_model_file
from lsst.meas.contextnet.cutouts import (
    background_noise,
    bad_mask_bits,
    extract_cutouts,
    has_good_pixels,
    scale_positions,
)
from lsst.meas.contextnet.ensemble import ProgressModule, count_sets, seed_from_data_id
from lsst.meas.contextnet.errors import (
    MissingPsfError,
    ModelOutputError,
    NoiseEstimateError,
    NoUsablePixelsError,
    PedestalError,
)
from lsst.meas.contextnet.modelcheck import (
    default_model_path,
    load_model_file,
    model_file,
    model_source,
)
from lsst.meas.contextnet.outputcolumns import CLASSIFICATION_COLUMNS, COLUMN_UNITS, OUTSIDE_TRAINING_COLUMN
from lsst.meas.contextnet.psfinputs import (
    draw_psf_kernels,
    interpolate_psf,
    model_inputs,
    needs_psf,
    psf_grid_images,
    subpixel_offsets,
)
from lsst.meas.contextnet.symmetry import SYMMETRY_GROUPS
from lsst.meas.contextnet.trainingworld import (
    ConditionsCheck,
    TrainingConditions,
    check_conditions,
    psf_fwhm,
    training_conditions,
)
from lsst.pex.config import ChoiceField, Field, FieldValidationError, ListField, RangeField
from lsst.pipe.base import (
    InputQuantizedConnection,
    OutputQuantizedConnection,
    PipelineTask,
    PipelineTaskConfig,
    PipelineTaskConnections,
    QuantumContext,
    Struct,
)
from lsst.utils.logging import PeriodicLogger
from lsst.utils.timer import timeMethod

if TYPE_CHECKING:
    from lsst.images import MaskedImage
    from lsst.meas.contextnet.modelio import LoadedModel

_DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")

PEDESTAL_SAMPLE_PIXELS = 65536
"""At most about how many pixels, on a regular grid, the pedestal check takes the median of.

The grid's step is ``ceil(sqrt(image size / PEDESTAL_SAMPLE_PIXELS))`` in both directions: every
16th row and column of a 4096x4096 image, every pixel of a 256x256 one. The median's statistical
error is then about 0.005 of the background noise, far below ``maxPedestal``.
"""


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run PyTorch's CPU operations on ``n`` threads inside the block, then restore the number.

    Parameters
    ----------
    n : `int`
        Threads for the block; values below 1 count as 1.

    Yields
    ------
    None
        Nothing; the setting holds until the block ends.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _pixel_scale(exposure: Any, frame: Any) -> float | None:
    """Return the pixel scale (arcseconds) at the centre of ``frame``, or `None` without a projection."""
    projection = getattr(exposure, "sky_projection", None)
    if projection is None:
        return None
    x = frame.x.start + 0.5 * (frame.x.size - 1)
    y = frame.y.start + 0.5 * (frame.y.size - 1)
    sky = projection.pixel_to_sky(x=np.array([x, x + 1.0, x]), y=np.array([y, y, y + 1.0]))
    return math.sqrt(sky[0].separation(sky[1]).arcsec * sky[0].separation(sky[2]).arcsec)


def _float_values(column: Any, dtype: str = "float64") -> np.ndarray:
    """Return a table column as floats, NaN where it is masked (a missing value, not its fill)."""
    return np.ma.filled(np.ma.asarray(column, dtype=dtype), np.nan)


def _copied_column(source: Any, dtype: str | None = None, **kwargs: Any) -> Column:
    """Copy a table column, keeping its missing values missing (a masked column, not its fill).

    Parameters
    ----------
    source : `astropy.table.Column` or array-like
        The input column.
    dtype : `str`, optional
        The output type; the input's by default.
    **kwargs
        Passed to the column (``description``, ``unit``).
    """
    data = np.ma.asarray(source, dtype=dtype)
    if np.ma.is_masked(data):
        return MaskedColumn(data, **kwargs)
    return Column(np.ma.getdata(data), **kwargs)


class ContextNetClassifierConnections(
    PipelineTaskConnections, dimensions=("instrument", "visit", "detector")
):
    """Connections of `ContextNetClassifierTask`.

    Dataset type names are the defaults of the simulator's repository; a pipeline renames them
    with ``connections.exposure``, ``connections.catalog`` and ``connections.classification``
    (see ``pipelines/ContextNetDM.yaml``).
    """

    exposure = cT.Input(
        doc="Calibrated, background-subtracted single-visit image with variance and mask planes.",
        name="calexp",
        storageClass="VisitImage",
        dimensions=("instrument", "visit", "detector"),
    )
    catalog = cT.Input(
        doc="Sources detected on the image: one row per source, with centroids and baseline columns.",
        name="src",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )
    model = cT.PrerequisiteInput(
        doc="ContextNet model file stored in the Butler by 'contextnet ingest-model' (the file's bytes "
        "as a uint8 NumpyArray); used when config.useButlerModel is True.",
        name=MODEL_DATASET_TYPE,
        storageClass="NumpyArray",
        dimensions=(),
    )
    classification = cT.Output(
        doc="ContextNet galaxy probability and flags, one row per input source in the same order.",
        name="contextnet_classification",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )

    def __init__(self, *, config: ContextNetClassifierConfig | None = None) -> None:
        super().__init__(config=config)
        if config is None or not config.useButlerModel:
            del self.model
        if config is not None and config.catalogStorageClass != "ArrowAstropy":
            self.catalog = dataclasses.replace(self.catalog, storageClass=config.catalogStorageClass)


class ContextNetClassifierConfig(PipelineTaskConfig, pipelineConnections=ContextNetClassifierConnections):
    """Configuration of `ContextNetClassifierTask`.

    The cutout size, the set size ``m`` and the pixel normalization are properties of the model
    and are read from its metadata, never configured here.
    """

    modelPath = Field[str](
        doc="TorchScript model file (written by 'contextnet train' / modelio.export_model). "
        "Environment variables and '~' are expanded. None (the default) uses the model shipped with "
        "the package, lsst/meas/contextnet/data/contextnet.pt (located with importlib.resources).",
        default=None,
        optional=True,
    )
    useButlerModel = Field[bool](
        doc="Read the model from the Butler (the 'model' prerequisite input, dataset type "
        "contextnet_model, stored by 'contextnet ingest-model') instead of modelPath; the quantum "
        "graph and provenance then name the exact model.",
        default=False,
    )
    device = Field[str](
        doc="Device the model runs on: 'auto' (the first CUDA GPU when PyTorch sees one, else the CPU), "
        "'cpu', 'cuda' or 'cuda:N'. Requesting CUDA on a machine without a usable GPU is an error.",
        default="auto",
    )
    batchSize = RangeField[int](
        doc="Cutouts per call of the local network (bounds its memory use).",
        default=4096,
        min=1,
    )
    setBatchSize = RangeField[int](
        doc="Sets of m sources per call of the global and prediction networks (bounds memory use at "
        "setBatchSize * m local feature vectors).",
        default=64,
        min=1,
    )
    nEnsemble = RangeField[int](
        doc="Minimum number of random sets each source is classified in (the paper's n_p); the "
        "reported probability is the mean over them and its error their standard deviation.",
        default=5,
        min=1,
    )
    nSymmetries = ChoiceField[int](
        doc="Symmetries of the square under which every set of sources is classified, the whole "
        "detector's cutouts and positions alike (the training augmentation's symmetries); a set's "
        "probability is the mean over them, at up to that many times the model's cost.",
        default=1,
        allowed={
            1: "The sources as they are.",
            4: "The four rotations by multiples of 90 degrees.",
            8: "The four rotations and their mirror images.",
        },
    )
    minGoodPixelFraction = RangeField[float](
        doc="Sources whose cutout has a smaller fraction of good pixels (in the image, finite, not in a "
        "bad mask plane) are not classified: galaxyProb NaN and classification_flag_noData.",
        default=0.5,
        min=0.0,
        max=1.0,
    )
    poolSetSize = RangeField[int](
        doc="For a model with a pooling (permutation-invariant) global network: 0 (the default) "
        "classifies all sources of the detector in one set; N > 0 draws random sets of N sources, each "
        "source in at least nEnsemble of them, as for the paper's network.",
        default=0,
        min=0,
    )
    minContextSources = RangeField[int](
        doc="A pooling model's rows are flagged classification_flag_fewSources when fewer sources than "
        "this can be classified (the context of so few is weak).",
        default=50,
        min=1,
    )
    seeingTolerance = RangeField[float](
        doc="Fractional margin around the seeing range of the model's training data (its card) within "
        "which an exposure's PSF FWHM counts as inside it; outside it, or in a band the model was not "
        "trained on, every row is flagged classification_flag_outsideTraining. The FWHM measured on "
        "the PSF model is within -4.4% and +9.6% of the simulator's drawn seeing in 48 test visits "
        "(the PSF model's own size errors included).",
        default=0.1,
        min=0.0,
    )
    maxPedestal = RangeField[float](
        doc="Largest median pixel value, in units of the background noise, of an image taken to be "
        "sky-subtracted; beyond it pedestalAction applies (the model was trained on sky-subtracted "
        "images, where the median pixel is close to 0).",
        default=3.0,
        min=0.0,
    )
    pedestalAction = ChoiceField[str](
        doc="What to do with an image whose median exceeds maxPedestal noise units.",
        default="warn",
        allowed={
            "warn": "Log a warning, record pedestal_sigma in the metadata, and classify.",
            "raise": "Refuse the image with a PedestalError.",
        },
    )
    coordUnit = Field[str](
        doc="Unit of the raColumn/decColumn values when the input columns carry none "
        "(an astropy unit string).",
        default="deg",
    )
    seed = RangeField[int](
        doc="Seed of the ensemble's random sets; each quantum combines it with its data ID "
        "(seed_from_data_id), so reruns give identical results.",
        default=0,
        min=0,
    )
    badMaskPlanes = ListField[str](
        doc="Mask planes whose pixels are replaced by 0 in the cutouts (and flag the source "
        "classification_flag_badPixels). lsst.images names (SATURATED) or afw names (SAT); planes the "
        "image does not have are ignored.",
        default=["BAD", "SATURATED", "NO_DATA", "COSMIC_RAY"],
    )
    idColumn = Field[str](doc="Input column with the source ID.", default="sourceId")
    xColumn = Field[str](
        doc="Input column with the centroid column position (pixels, 0-based, parent frame).", default="x"
    )
    yColumn = Field[str](
        doc="Input column with the centroid row position (pixels, 0-based, parent frame).", default="y"
    )
    raColumn = Field[str](doc="Input column with the right ascension.", default="coord_ra")
    decColumn = Field[str](doc="Input column with the declination.", default="coord_dec")
    baselineColumns = ListField[str](
        doc="Input columns copied unchanged to the output (the DM star/galaxy baselines).",
        default=["extendedness", "sizeExtendedness"],
    )
    catalogStorageClass = ChoiceField[str](
        doc="Storage class of the input catalog.",
        default="ArrowAstropy",
        allowed={
            "ArrowAstropy": "An astropy table (the simulator's src, DM source_detector).",
            "SourceCatalog": "An afw SourceCatalog, converted with asAstropy(); DM stack only, untested "
            "in the pip environment (afw is not installable there).",
        },
    )

    def validate(self) -> None:
        """Check the configuration.

        Raises
        ------
        lsst.pex.config.FieldValidationError
            If ``device`` is not one of the accepted forms, or an output column name would be
            duplicated by ``baselineColumns``.

        """
        super().validate()
        if self.device is None or not _DEVICE_PATTERN.fullmatch(self.device):
            raise FieldValidationError(
                ContextNetClassifierConfig.device,
                self,
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}",
            )
        self._check_model_early()
        clashes = sorted(set(self.baselineColumns) & set(CLASSIFICATION_COLUMNS))
        if clashes or len(set(self.baselineColumns)) != len(self.baselineColumns):
            raise FieldValidationError(
                ContextNetClassifierConfig.baselineColumns,
                self,
                f"baselineColumns must be distinct and differ from the output columns; got "
                f"{list(self.baselineColumns)} (clashes: {clashes})",
            )

    def _check_model_early(self) -> None:
        """Check the model file once, when the pipeline is built.

        ``pipetask`` validates every task configuration before it builds the quantum graph, so
        a missing, corrupt or mismatched model file fails there with one message, before any
        input is read. The file is loaded on the CPU: the graph may be built on a host without
        the GPU that ``device`` asks for (a batch submission), so the device is checked where
        the task runs (`ContextNetClassifierTask.load_model`).
        """
        from lsst.meas.contextnet.modelio import ModelFileError

        if self.useButlerModel:
            return
        try:
            load_model_file(model_file(self.modelPath), "cpu", model_source(self.modelPath))
        except FileNotFoundError as exc:
            raise FieldValidationError(ContextNetClassifierConfig.modelPath, self, str(exc)) from exc
        except ModelFileError as exc:
            message = f"{exc} ({model_source(self.modelPath)})"
            raise FieldValidationError(ContextNetClassifierConfig.modelPath, self, message) from exc


class ContextNetClassifierTask(PipelineTask):
    """Classify every source of a single-visit image as star or galaxy with ContextNet.

    For each source a ``cutout_size`` x ``cutout_size`` cutout centred on its centroid is cut
    from the image, divided by the background noise ``sqrt(median(variance))`` and stretched as
    the model's metadata says; the model runs over ``ceil(nEnsemble * N / m)`` random sets of
    ``m`` sources (every source in at least ``nEnsemble``), with the local network computed once
    per source; each source's probability is the mean over its sets.

    Parameters
    ----------
    **kwargs
        Passed to `lsst.pipe.base.PipelineTask`.

    Notes
    -----
    The model is loaded on first use and kept for the task's lifetime. Its SHA-256 and metadata
    go into the task metadata (``model.*``), as do the time spent reading, cutting, running the
    model and writing (``timing.*``, seconds) and source counts.

    Flags: ``classification_flag_edge`` (cutout crosses the image edge: missing pixels are 0, the
    sky level; also set for centroids off the image), ``classification_flag_badPixels`` (NaN pixels,
    non-finite variance or ``badMaskPlanes`` pixels inside the cutout, replaced by 0),
    ``classification_flag_fewSources`` (fewer classifiable sources than the paper network's ``m``,
    so sets repeat sources, or than a pooling network's ``minContextSources`` or ``poolSetSize``),
    ``classification_flag_noData`` (less than ``minGoodPixelFraction`` of the cutout in the image
    and good: not classified, NaN) and ``classification_flag`` (any of these, or a centroid that
    is not finite or off the image: such sources are not classified and get NaN).
    ``classification_flag_outsideTraining`` marks every row of an exposure whose PSF FWHM or band
    lies outside the conditions of the model's training data
    (`~lsst.meas.contextnet.trainingworld`); it is a caution, not a failure, and is not part of
    ``classification_flag``.

    """

    ConfigClass = ContextNetClassifierConfig
    _DefaultName = "contextnetClassifier"
    config: ContextNetClassifierConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model: LoadedModel | None = None
        self._model_override: Path | None = None

    @property
    def model_path(self) -> Path:
        """The model file the configuration selects (`pathlib.Path`)."""
        if self._model_override is not None:
            return self._model_override
        return model_file(self.config.modelPath)

    def load_model(self) -> LoadedModel:
        """Load, check and cache the configured model.

        Returns
        -------
        model : `~lsst.meas.contextnet.modelio.LoadedModel`
            The model on the configured device; the same object on every call.

        Raises
        ------
        FileNotFoundError
            If the model file does not exist.
        lsst.meas.contextnet.modelio.ModelFileError
            If the file is not a valid ContextNet model, or its network rejects the cutout size,
            set size or features its metadata declares.
        RuntimeError
            If ``device`` asks for CUDA and no usable GPU is present.

        """
        if self._model is not None:
            return self._model
        path = self.model_path
        start = time.perf_counter()
        loaded = load_model_file(path, self.config.device, model_source(self.config.modelPath))
        elapsed = time.perf_counter() - start
        metadata = loaded.metadata
        self.metadata["model.path"] = str(path)
        self.metadata["model.sha256"] = loaded.sha256
        self.metadata["model.device"] = str(loaded.device)
        self.metadata["model.architecture"] = str(metadata.get("architecture", "unknown"))
        self.metadata["model.cutout_size"] = loaded.cutout_size
        self.metadata["model.m"] = loaded.m
        self.metadata["model.code_version"] = str(metadata.get("code_version", "unknown"))
        self.metadata["model.metadata_json"] = json.dumps(metadata, sort_keys=True)
        self.metadata["timing.load_model"] = elapsed
        self.log.info(
            "Loaded ContextNet model %s (sha256 %s, %s, cutout %d, m=%d) on %s in %.2f s.",
            path,
            loaded.sha256[:12],
            metadata.get("architecture", "unknown architecture"),
            loaded.cutout_size,
            loaded.m,
            loaded.device,
            elapsed,
        )
        self._model = loaded
        return loaded

    @timeMethod
    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Read the inputs, classify, write the output; see `run`.

        PyTorch runs on as many CPU threads as the quantum has cores
        (``butlerQC.resources.num_cores``: ``pipetask run --cores-per-quantum N``, 1 by default),
        whatever the process's own setting.

        Parameters
        ----------
        butlerQC : `lsst.pipe.base.QuantumContext`
            Butler access for this quantum.
        inputRefs : `lsst.pipe.base.InputQuantizedConnection`
            Input dataset references.
        outputRefs : `lsst.pipe.base.OutputQuantizedConnection`
            Output dataset references.

        """
        start = time.perf_counter()
        inputs = butlerQC.get(inputRefs)
        read = time.perf_counter() - start
        self.metadata["timing.read"] = read
        payload = inputs.pop("model", None)
        if payload is not None:
            self._model_override = butler_model_file(payload)
            self._model = None
        data_id = butlerQC.quantum.dataId
        seed = seed_from_data_id(self.config.seed, dict(data_id.required) if data_id is not None else {})
        cores = butlerQC.resources.num_cores
        self.metadata["cpu_threads"] = cores
        start = time.perf_counter()
        with cpu_threads(cores):
            outputs = self.run(**inputs, seed=seed)
        classify = time.perf_counter() - start
        start = time.perf_counter()
        butlerQC.put(outputs, outputRefs)
        write = time.perf_counter() - start
        self.metadata["timing.write"] = write
        self.log.info(
            "Timing: read %.2f s, classify %.2f s (PyTorch CPU threads: %d), write %.2f s.",
            read,
            classify,
            cores,
            write,
        )

    @timeMethod
    def run(self, exposure: MaskedImage, catalog: Any, seed: int | None = None) -> Struct:
        """Classify every source of a catalog on its image.

        Parameters
        ----------
        exposure : `lsst.images.VisitImage` or `lsst.images.MaskedImage`
            Background-subtracted image with variance (in the image's units squared) and mask.
            Positions are scaled over the bounding box of its ``detector`` when it has one (a
            `~lsst.images.VisitImage`), else over the image's.
        catalog : `astropy.table.Table`
            Sources, with the columns named in the configuration; centroids in the image's
            parent pixel frame. An afw ``SourceCatalog`` is converted with ``asAstropy()``
            (DM stack only; untested here).
        seed : `int`, optional
            Seed of the ensemble's random sets; `runQuantum` derives it from the data ID with
            `seed_from_data_id`. Default: ``config.seed``.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``classification``: `astropy.table.Table` with one row per catalog row in the same
            order: `CLASSIFICATION_COLUMNS` then ``config.baselineColumns``. An empty catalog
            gives an empty table with the same columns.

        Raises
        ------
        ValueError
            If the catalog lacks a configured column.
        FileNotFoundError, lsst.meas.contextnet.modelio.ModelFileError, RuntimeError
            If the model cannot be loaded (see `load_model`).
        NoiseEstimateError, MissingPsfError, NoUsablePixelsError, PedestalError
            If the exposure cannot be classified (see `prepare_inputs`).
        ModelOutputError
            If the model returns probabilities that are not finite or not in [0, 1].

        """
        table = self._as_table(catalog)
        loaded = self.load_model()
        seed = self.config.seed if seed is None else int(seed)
        n = len(table)
        self.metadata["n_sources"] = n
        if n == 0:
            self.metadata["timing.cutouts"] = 0.0
            self.metadata["timing.model"] = 0.0
            self.log.info("No sources to classify; writing an empty table.")
            m, n_p, _ = self.ensemble_plan(loaded, 0)
            return Struct(classification=self._make_output(table, loaded, seed, m, n_p))

        prepared = self.prepare_inputs(exposure, table, loaded)
        cutouts, valid, noise_sigma = prepared.cutouts, prepared.valid, prepared.noise_sigma

        start = time.perf_counter()
        n_valid = int(valid.sum())
        m, n_p, min_sources = self.ensemble_plan(loaded, n_valid)
        n_sets = count_sets(n_valid, m, n_p)
        from lsst.meas.contextnet.ensemble import ensemble_predict

        codes = SYMMETRY_GROUPS[self.config.nSymmetries]
        result = ensemble_predict(
            ProgressModule(loaded.module, len(codes) * n_sets if n_valid else 0, PeriodicLogger(self.log)),
            prepared.inputs,
            prepared.positions,
            n_p,
            seed,
            batch_sets=self.config.setBatchSize,
            device=loaded.device,
            local_batch=self.config.batchSize,
            m=m,
            symmetries=codes,
        )
        self.metadata["timing.model"] = time.perf_counter() - start
        wrong = ~np.isfinite(result.mean) | (result.mean < 0.0) | (result.mean > 1.0)
        if wrong.any():
            raise ModelOutputError(
                f"the ContextNet model {self.model_path} returned {int(wrong.sum())} probabilities that are "
                f"not finite or not in [0, 1] (e.g. {result.mean[wrong][:3].tolist()}); the model is broken"
            )

        output = self._make_output(table, loaded, seed, m, n_p)
        probability = np.full(n, np.nan, dtype=np.float32)
        probability[valid] = result.mean
        # A spread over a single set is not a measurement: NaN, not 0.
        error = np.full(n, np.nan, dtype=np.float32)
        error[valid] = np.where(result.n_sets > 1, result.std, np.nan)
        n_sets_column = np.zeros(n, dtype=np.int32)
        n_sets_column[valid] = result.n_sets
        few_sources = np.full(n, n_valid < min_sources)
        edge = cutouts.edge
        # Fill in place: assigning whole columns would drop their descriptions.
        output["classification_galaxyProb"][:] = probability
        output["classification_galaxyProbErr"][:] = error
        output["classification_nSets"][:] = n_sets_column
        output["classification_flag_edge"][:] = edge
        output["classification_flag_badPixels"][:] = cutouts.bad_pixels
        output["classification_flag_fewSources"][:] = few_sources
        output["classification_flag_noData"][:] = prepared.no_data
        output["classification_flag"][:] = edge | cutouts.bad_pixels | few_sources | ~valid
        output[OUTSIDE_TRAINING_COLUMN][:] = prepared.conditions.outside
        output.meta["contextnet_noise_sigma"] = noise_sigma

        self.metadata["n_classified"] = n_valid
        self.metadata["n_edge"] = int(edge.sum())
        self.metadata["n_bad_pixels"] = int(cutouts.bad_pixels.sum())
        self.metadata["n_sets"] = n_sets if n_valid else 0
        self.metadata["noise_sigma"] = noise_sigma
        if n_valid < min_sources:
            self.log.warning(
                "Only %d classifiable sources, fewer than the model's %d for a full context: every row "
                "is flagged classification_flag_fewSources.",
                n_valid,
                min_sources,
            )
        self.log.info(
            "Classified %d of %d sources (%d at the edge, %d with bad pixels) in %d sets of %d on %s: "
            "cutouts %.2f s, PSF %.2f s, inputs %.2f s, model %.2f s.",
            n_valid,
            n,
            int(edge.sum()),
            int(cutouts.bad_pixels.sum()),
            self.metadata["n_sets"],
            m,
            loaded.device,
            self.metadata["timing.cutouts"],
            self.metadata["timing.psf"],
            self.metadata["timing.inputs"],
            self.metadata["timing.model"],
        )
        return Struct(classification=output)

    def ensemble_plan(self, loaded: LoadedModel, n_valid: int) -> tuple[int, int, int]:
        """Set size, sets per source and the fewest sources for a full context.

        Parameters
        ----------
        loaded : `~lsst.meas.contextnet.modelio.LoadedModel`
            The model.
        n_valid : `int`
            Number of classifiable sources.

        Returns
        -------
        m, n_p, min_sources : `int`
            The paper's network: its own ``m``, ``nEnsemble``, ``m``. A pooling network: all
            sources in one set (``n_p = 1``), or random sets of ``poolSetSize`` with
            ``nEnsemble`` each, and the larger of ``minContextSources`` and ``poolSetSize``
            (fewer than ``poolSetSize`` fill the sets with repeats). A local-only network
            (no context): all sources in one set, and no fewest.
        """
        if loaded.global_kind == "none":
            return max(n_valid, 1), 1, 0
        if loaded.global_kind != "pool":
            return loaded.m, self.config.nEnsemble, loaded.m
        m = self.config.poolSetSize or max(n_valid, 1)
        n_p = self.config.nEnsemble if self.config.poolSetSize else 1
        return m, n_p, max(self.config.minContextSources, self.config.poolSetSize)

    @timeMethod
    def prepare_inputs(self, exposure: MaskedImage, table: Table, loaded: LoadedModel) -> Struct:
        """Cut the sources and build the model's inputs: the one preprocessing path.

        Training (`lsst.meas.contextnet.training.data.load_training_data`) builds its inputs with the
        same `lsst.meas.contextnet.psfinputs.model_inputs`, and the benchmark calls this method.

        Parameters
        ----------
        exposure : `lsst.images.VisitImage` or `lsst.images.MaskedImage`
            The image (see `run`).
        table : `astropy.table.Table`
            Sources with the configured columns.
        loaded : `~lsst.meas.contextnet.modelio.LoadedModel`
            The model (its cutout size, normalization, inputs and PSF grid).

        Returns
        -------
        prepared : `lsst.pipe.base.Struct`
            ``cutouts`` (`~lsst.meas.contextnet.cutouts.CutoutResult` of every source),
            ``valid`` (boolean: classifiable sources), ``no_data`` (boolean: too few good
            pixels), ``inputs`` ((n_valid, C, S, S) float32),
            ``positions`` ((n_valid, 2) float32), ``noise_sigma`` and ``conditions``
            (`~lsst.meas.contextnet.trainingworld.ConditionsCheck`: the exposure against the
            model's training conditions); the stages' times are in
            ``self.metadata`` (``timing.cutouts``, ``timing.psf``, ``timing.inputs``).

        Raises
        ------
        NoiseEstimateError
            If the variance plane gives no positive, finite noise level.
        MissingPsfError
            If the model needs the PSF and the exposure has none.
        NoUsablePixelsError
            If no source has enough good pixels because the image has none (sources whose
            cutouts lack them in an image that has some are flagged ``noData``).
        PedestalError
            If the image is not sky-subtracted and ``pedestalAction`` is ``"raise"``.
        """
        start = time.perf_counter()
        # A masked centroid is a missing one, flagged like any non-finite centroid.
        x = _float_values(table[self.config.xColumn])
        y = _float_values(table[self.config.yColumn])
        bbox = exposure.bbox
        mask_array, mask_bits = self._bad_mask(exposure)
        cutouts = extract_cutouts(
            exposure.image.array,
            x - bbox.x.start,
            y - bbox.y.start,
            loaded.cutout_size,
            variance=exposure.variance.array,
            mask=mask_array,
            bad_mask_bits=mask_bits,
        )
        noise_sigma = background_noise(exposure.variance.array)
        if not (math.isfinite(noise_sigma) and noise_sigma > 0):
            raise NoiseEstimateError(noise_sigma)
        self._check_pedestal(exposure.image.array, noise_sigma)
        size = loaded.cutout_size
        # Good pixels: in the image, and not bad.
        good = (cutouts.n_inside - cutouts.bad.sum(axis=(1, 2))) / (size * size)
        no_data = ~(cutouts.bad_centroid | cutouts.off_image) & (good < self.config.minGoodPixelFraction)
        valid = ~(cutouts.bad_centroid | cutouts.off_image | no_data)
        if len(table) and not valid.any() and no_data.any():
            if not has_good_pixels(exposure.image.array, exposure.variance.array, mask_array, mask_bits):
                raise NoUsablePixelsError(len(table), self.config.minGoodPixelFraction)
            self.log.warning(
                "None of the %d sources has %.0f%% good pixels in its cutout: every row is flagged "
                "classification_flag_noData.",
                len(table),
                100 * self.config.minGoodPixelFraction,
            )
        detector = getattr(exposure, "detector", None)
        frame = detector.bbox if detector is not None else bbox
        fx, fy = x[valid] - frame.x.start, y[valid] - frame.y.start
        positions = scale_positions(fx, fy, frame.x.size, frame.y.size)
        self.metadata["timing.cutouts"] = time.perf_counter() - start

        start = time.perf_counter()
        training = training_conditions(loaded.metadata)
        psf = getattr(exposure, "psf", None)
        if psf is None and needs_psf(loaded.inputs):
            raise MissingPsfError(loaded.inputs)
        kernels = None
        if psf is not None and needs_psf(loaded.inputs):
            kernels = self._psf_kernels(psf, frame, loaded)
        elif psf is not None and training is not None:
            # A PSF-blind model draws the PSF only for the check, which must not stop it.
            try:
                kernels = self._psf_kernels(psf, frame, loaded)
            except Exception as exc:
                self.log.warning(
                    "Could not draw the PSF model to measure the seeing (%s); not checking it.", exc
                )
        conditions = self._check_conditions(exposure, frame, kernels, training)
        psf_images = dx = dy = None
        if needs_psf(loaded.inputs):
            grid = psf_grid_images(kernels, loaded.cutout_size)
            psf_images = interpolate_psf(grid, fx, fy, frame.x.size, frame.y.size)
            dx, dy = subpixel_offsets(x[valid], y[valid])
        self.metadata["timing.psf"] = time.perf_counter() - start
        start = time.perf_counter()
        # Every source is usually classifiable: then the cutouts are used as they are, not copied.
        chosen = slice(None) if valid.all() else valid
        inputs = model_inputs(
            cutouts.cutouts[chosen],
            noise_sigma,
            loaded.metadata["normalization"],
            loaded.inputs,
            bad=cutouts.bad[chosen],
            psf=psf_images,
            dx=dx,
            dy=dy,
        )
        self.metadata["timing.inputs"] = time.perf_counter() - start

        return Struct(
            cutouts=cutouts,
            valid=valid,
            no_data=no_data,
            inputs=inputs,
            positions=positions,
            noise_sigma=noise_sigma,
            conditions=conditions,
        )

    def _check_pedestal(self, image: np.ndarray, noise_sigma: float) -> None:
        """Warn about (or refuse) an image that does not look sky-subtracted.

        The median pixel is taken over at most about `PEDESTAL_SAMPLE_PIXELS` pixels on a regular
        grid.
        """
        image = np.asarray(image)
        stride = max(1, math.ceil(math.sqrt(image.size / PEDESTAL_SAMPLE_PIXELS)))
        sample = image[::stride, ::stride]
        finite_pixels = np.isfinite(sample)
        finite = sample if finite_pixels.all() else sample[finite_pixels]
        pedestal = float(np.median(finite)) / noise_sigma if finite.size else 0.0
        self.metadata["pedestal_sigma"] = pedestal
        if abs(pedestal) <= self.config.maxPedestal:
            return
        if self.config.pedestalAction == "raise":
            raise PedestalError(pedestal, self.config.maxPedestal)
        self.log.warning(
            "The image's median pixel is %.1f times the background noise (maxPedestal %.1f): it does "
            "not look sky-subtracted, and the model was trained on sky-subtracted images; classifying "
            "anyway (pedestalAction='warn').",
            pedestal,
            self.config.maxPedestal,
        )

    def _psf_kernels(self, psf: Any, frame: Any, loaded: LoadedModel) -> list[np.ndarray]:
        """Draw the exposure's PSF model on the model's grid of the detector (``frame``).

        The kernel images as the PSF model returns them (`~lsst.meas.contextnet.psfinputs.draw_psf_kernels`):
        the seeing is measured on them, and a PSF-aware model's grid embeds them.
        """
        return draw_psf_kernels(
            lambda px, py: psf.compute_kernel_image(x=px, y=py).array,
            frame.x.size,
            frame.y.size,
            loaded.psf_grid,
            x0=frame.x.start,
            y0=frame.y.start,
        )

    def _check_conditions(
        self,
        exposure: MaskedImage,
        frame: Any,
        kernels: list[np.ndarray] | None,
        training: TrainingConditions | None,
    ) -> ConditionsCheck:
        """Compare the exposure's seeing and band with the model's training conditions.

        The seeing is the median FWHM of the PSF model's kernel images on the grid, in arcseconds
        at the pixel scale of the detector's centre; it is not measured without them or without
        a sky projection.  Sets ``psf_fwhm`` (NaN when not measured) and ``training_conditions``
        (``inside``, ``outside`` or ``unchecked``) in the metadata.
        """
        band = getattr(exposure, "band", None)
        scale = _pixel_scale(exposure, frame) if kernels else None
        fwhm = None
        if scale is not None:
            try:
                fwhm = float(np.median([psf_fwhm(k) for k in kernels])) * scale
            except ValueError as exc:
                self.log.warning("Could not measure the seeing on the PSF model's images (%s).", exc)
        self.metadata["psf_fwhm"] = math.nan if fwhm is None else fwhm
        if training is None:
            self.metadata["training_conditions"] = "unchecked"
            self.log.debug("The model card names no training worlds; not checking the exposure against them.")
            return ConditionsCheck(fwhm=fwhm, band=band, reasons=())
        check = check_conditions(training, fwhm, band, self.config.seeingTolerance)
        if not check.checked:
            self.metadata["training_conditions"] = "unchecked"
            self.log.info("The exposure has neither a measurable seeing nor a band; not checking it.")
            return check
        self.metadata["training_conditions"] = "outside" if check.outside else "inside"
        if fwhm is None:
            self.log.info("The exposure's seeing could not be measured; only its band was checked.")
        if check.outside:
            self.log.warning(
                "The exposure lies outside the conditions the model was trained on (%s): its "
                "probabilities are not validated there, and every row is flagged "
                "classification_flag_outsideTraining.",
                "; ".join(check.reasons),
            )
        return check

    def _as_table(self, catalog: Any) -> Table:
        """Return the catalog as an astropy table with every configured column, or raise."""
        if isinstance(catalog, Table):
            table = catalog
        elif hasattr(catalog, "asAstropy"):
            # An afw SourceCatalog (DM stack only; untested in the pip environment).
            table = catalog.asAstropy()
        else:
            raise TypeError(f"catalog must be an astropy Table, got {type(catalog).__name__}")
        required = {
            "idColumn": self.config.idColumn,
            "raColumn": self.config.raColumn,
            "decColumn": self.config.decColumn,
            "xColumn": self.config.xColumn,
            "yColumn": self.config.yColumn,
        }
        required.update({f"baselineColumns[{i}]": name for i, name in enumerate(self.config.baselineColumns)})
        missing = {field: name for field, name in required.items() if name not in table.colnames}
        if missing:
            raise ValueError(f"input catalog lacks the configured columns {missing}; it has {table.colnames}")
        return table

    def _bad_mask(self, exposure: MaskedImage) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Return the mask array and the bits of the configured bad planes it has, if any."""
        array, bits, ignored = bad_mask_bits(exposure.mask, self.config.badMaskPlanes)
        if ignored:
            self.log.debug("Mask planes %s are not in this image's mask; ignoring them.", ignored)
        return array, bits

    def _make_output(self, table: Table, loaded: LoadedModel, seed: int, m: int, n_p: int) -> Table:
        """Start the output table: copied columns filled, classification columns empty.

        The metadata record the model, the seed, and the set size ``m`` and the fewest sets per
        source ``n_p`` the run used (`ensemble_plan`).
        """
        n = len(table)
        output = Table(
            meta={
                "contextnet_model_sha256": loaded.sha256,
                "contextnet_seed": int(seed),
                "contextnet_nEnsemble": int(n_p),
                "contextnet_setSize": int(m),
            }
        )
        copied = {
            "sourceId": self.config.idColumn,
            "coord_ra": self.config.raColumn,
            "coord_dec": self.config.decColumn,
            "x": self.config.xColumn,
            "y": self.config.yColumn,
        }
        for name, (dtype, description) in CLASSIFICATION_COLUMNS.items():
            unit = COLUMN_UNITS.get(name)
            if name not in copied:
                data = np.full(n, np.nan if dtype.startswith("float") else 0, dtype=dtype)
                output[name] = Column(data, description=description, unit=unit)
            elif dtype.startswith("float"):
                source = table[copied[name]]
                if name in ("coord_ra", "coord_dec"):
                    unit = getattr(source, "unit", None) or self.config.coordUnit
                output[name] = Column(_float_values(source, dtype), description=description, unit=unit)
            else:
                output[name] = _copied_column(table[copied[name]], dtype, description=description, unit=unit)
        for name in self.config.baselineColumns:
            source = table[name]
            output[name] = _copied_column(
                source,
                description=getattr(source, "description", None) or f"Copied from the input column {name}.",
                unit=getattr(source, "unit", None),
            )
        return output
