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

"""The benchmark's Butler measurements: one classifier quantum, and a profile of the ``calexp`` read."""

from __future__ import annotations

__all__ = []

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from lsst.meas.contextnet.tools.benchinputs import (
    _BAND,
    _BEGIN,
    _DETECTOR,
    _EXPOSURE_TIME_S,
    _RUN,
    _VISIT,
    BenchExposure,
    _classifier_config,
)
from lsst.meas.contextnet.tools.benchtiming import (
    _TASK_LABEL,
    _TIMING_KEYS,
    PAIRED_RATIO_METHOD,
    Timing,
    paired_ratio,
    time_call,
    time_interleaved,
)

if TYPE_CHECKING:
    from lsst.meas.contextnet.tools.bench import BenchSettings


def _metadata_value(metadata: Any, key: str) -> float | None:
    """Read ``<label>.<key>`` from a task metadata dataset, `None` when absent."""
    for name in (f"{_TASK_LABEL}.{key}", key):
        try:
            return float(metadata[name])
        except (KeyError, TypeError, ValueError):
            continue
    return None


_DEFAULT_FORMAT_TYPE = "calexp_lsst_images_default"
_PLANES = ("image", "mask", "variance")


def _plain_planes(path: str, native: bool = False) -> dict[str, Any]:
    """Read a visit image file's three pixel planes with astropy alone (decompressed copies).

    FITS stores big-endian numbers; ``native`` also converts them to the machine's byte order, as
    every reader that computes on them must (``lsst.images`` does).
    """
    import astropy.io.fits

    with astropy.io.fits.open(path) as hdus:
        planes = {name: np.array(hdus[name.upper()].data, copy=True) for name in _PLANES}
    if native:
        planes = {name: a.astype(a.dtype.newbyteorder("="), copy=False) for name, a in planes.items()}
    return planes


def _mask_read_plane_by_plane(reader: Any, ref: Any, settings: BenchSettings) -> float:
    """Median time of reading the mask component with ``lsst.images``' own plane-by-plane merge.

    The time before `lsst.meas.contextnet.maskmerge`, measured in the same run.
    """
    from lsst.images import Mask
    from lsst.meas.contextnet.maskmerge import install_mask_merge

    install_mask_merge()
    merged = Mask.update
    Mask.update = Mask._update_plane_by_plane
    try:
        timing, _ = time_call(
            lambda: reader.get(ref.makeComponentRef("mask")), settings.repeat, settings.warmup
        )
    finally:
        Mask.update = merged
    return timing.median


def _read_profile(
    reader: Any, data_id: dict[str, Any], settings: BenchSettings, log: Callable[[str], None]
) -> dict[str, Any]:
    """Split a ``calexp`` read into its components and compare it with plain reads of its planes.

    For the repository's own ``calexp`` (the simulated repositories' formatter) and for the same
    image written by ``lsst.images``' default formatter: the whole ``butler.get``, each component
    read alone (image, mask, variance, psf, detector), and astropy reading the three pixel planes of
    the same file, the floor a Butler read can be compared with; and the mask read with the
    plane-by-plane merge that `lsst.meas.contextnet.maskmerge` replaces.
    """
    out: dict[str, Any] = {}
    for label, dataset_type in (("calexp", "calexp"), ("lsst_images_default", _DEFAULT_FORMAT_TYPE)):
        ref = reader.find_dataset(dataset_type, data_id)
        path = reader.getURI(ref).ospath
        entry: dict[str, Any] = {"file_bytes": Path(path).stat().st_size}
        log(f"read profile: {label}: butler.get and plain reads, {settings.ratio_rounds} rounds")
        timings, _ = time_interleaved(
            {
                "butler_get": lambda ref=ref: reader.get(ref),
                "plain_read_planes": lambda path=path: _plain_planes(path),
                "plain_read_planes_native": lambda path=path: _plain_planes(path, native=True),
            },
            settings.ratio_rounds,
            settings.warmup,
        )
        entry["butler_get"] = timings["butler_get"].to_dict()
        entry["components"] = {}
        for component in (*_PLANES, "psf", "detector"):
            timing, _ = time_call(
                lambda ref=ref, c=component: reader.get(ref.makeComponentRef(c)),
                settings.repeat,
                settings.warmup,
            )
            entry["components"][component] = timing.median
        entry["mask_plane_by_plane"] = _mask_read_plane_by_plane(reader, ref, settings)
        for plain in ("plain_read_planes", "plain_read_planes_native"):
            entry[plain] = timings[plain].to_dict()
        entry["butler_over_plain"] = paired_ratio(timings["butler_get"], timings["plain_read_planes"])
        entry["butler_over_plain_native"] = paired_ratio(
            timings["butler_get"], timings["plain_read_planes_native"]
        )
        out[label] = entry
    out["default_over_ours"] = (
        out["lsst_images_default"]["butler_get"]["median_s"] / out["calexp"]["butler_get"]["median_s"]
    )
    out["method"] = (
        "butler.get of the whole dataset and of each component alone (median of repeats, file in "
        "the page cache); plain = astropy.io.fits opening the file and copying IMAGE, MASK, VARIANCE "
        "(plain_native: and converting them from FITS's big-endian to the machine's byte order, "
        "as lsst.images does); "
        "mask_plane_by_plane = the mask component read with lsst.images' own merge of the stored words; "
        f"butler_over_plain*: {PAIRED_RATIO_METHOD}"
    )
    return out


def _bench_quantum(
    exposure: BenchExposure,
    model_path: Path,
    device: Any,
    settings: BenchSettings,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Put the exposure in a temporary repository and time reads against a full quantum."""
    import torch
    from astropy.time import Time
    from lsst.daf.butler import Butler, DatasetType
    from lsst.meas.contextnet.classifier import ContextNetClassifierTask
    from lsst.meas.contextnet.sim.repo import create_or_open_repo, put_visit_datasets, register_visit
    from lsst.pipe.base import ExecutionResources
    from lsst.pipe.base.simple_pipeline_executor import SimplePipelineExecutor

    size = exposure.description["size"]
    data_id = {"instrument": "SimCam", "visit": _VISIT, "detector": _DETECTOR}
    out: dict[str, Any] = {"device": str(device), "data_id": data_id}
    with tempfile.TemporaryDirectory(prefix="contextnet-bench-") as tmp:
        root = str(Path(tmp) / "repo")
        log(f"quantum: writing a {size}x{size} visit to a temporary Butler repository")
        start = time.perf_counter()
        butler = create_or_open_repo(root, run=_RUN)
        register_visit(
            butler,
            visit=_VISIT,
            band=_BAND,
            exposure_time_s=_EXPOSURE_TIME_S,
            begin=Time(_BEGIN, scale="tai"),
            detector_wcs={_DETECTOR: exposure.wcs},
            width=size,
            height=size,
        )
        put_visit_datasets(butler, _RUN, exposure.calexp, exposure.src, exposure.truth)
        out["write_inputs_s"] = time.perf_counter() - start
        out["calexp_file_bytes"] = (
            Path(butler.getURI("calexp", data_id, collections=_RUN).ospath).stat().st_size
        )
        # The same image as lsst.images' own formatter writes it (its default compression), to
        # compare with the simulated repositories' formatter.
        butler.registry.registerDatasetType(
            DatasetType(
                _DEFAULT_FORMAT_TYPE,
                ("instrument", "visit", "detector"),
                "VisitImage",
                universe=butler.dimensions,
            )
        )
        start = time.perf_counter()
        butler.put(exposure.calexp, _DEFAULT_FORMAT_TYPE, data_id, run=_RUN)
        out["write_calexp_default_compression_s"] = time.perf_counter() - start
        butler.close()

        reader = Butler.from_config(root, collections=[_RUN])
        try:
            for name in ("calexp", "src"):
                log(f"quantum: butler.get({name!r})")
                timing, _ = time_call(
                    lambda name=name: reader.get(name, data_id), settings.repeat, settings.warmup
                )
                out[f"read_{name}"] = timing.to_dict()
            out["read_profile"] = _read_profile(reader, data_id, settings, log)
        finally:
            reader.close()
        out["read_s"] = out["read_calexp"]["median_s"] + out["read_src"]["median_s"]

        config = _classifier_config(model_path, str(device), settings.n_ensemble)
        totals: list[float] = []
        splits: dict[str, list[float]] = {key: [] for key in _TIMING_KEYS}
        for i in range(settings.warmup + settings.repeat):
            log(f"quantum: SimplePipelineExecutor run {i + 1} of {settings.warmup + settings.repeat}")
            output = f"bench/quantum{i}"
            qbutler = SimplePipelineExecutor.prep_butler(root, inputs=[_RUN], output=output)
            try:
                executor = SimplePipelineExecutor.from_task_class(
                    ContextNetClassifierTask,
                    config=config,
                    label=_TASK_LABEL,
                    butler=qbutler,
                    resources=ExecutionResources(num_cores=torch.get_num_threads()),
                )
                start = time.perf_counter()
                quanta = executor.run(register_dataset_types=True, save_versions=False)
                elapsed = time.perf_counter() - start
                if len(quanta) != 1:
                    raise RuntimeError(f"expected one classifier quantum, the executor ran {len(quanta)}")
                metadata = qbutler.get(f"{_TASK_LABEL}_metadata", data_id)
            finally:
                qbutler.close()
            if i < settings.warmup:
                continue
            totals.append(elapsed)
            for key in _TIMING_KEYS:
                value = _metadata_value(metadata, f"timing.{key}")
                if value is not None:
                    splits[key].append(value)
    total = Timing(tuple(totals))
    out["quantum"] = total.to_dict()
    out["quantum_method"] = (
        "lsst.pipe.base.SimplePipelineExecutor.run (one quantum: read calexp + src, run, write "
        "contextnet_classification and task metadata/log); graph building excluded; the quantum "
        "given as many cores as PyTorch has threads"
    )
    split = {key: float(np.median(values)) for key, values in splits.items() if values}
    out["split_median_s"] = split
    out["split_source"] = "task metadata timing.read / timing.cutouts / timing.model / timing.write"
    if split:
        out["split_median_s"]["other"] = total.median - sum(split.values())
    out["quantum_over_read_calexp"] = total.median / out["read_calexp"]["median_s"]
    out["quantum_over_read"] = total.median / out["read_s"]
    return out
