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

"""Tests of ContextNetClassifierTask: run() on in-memory data, a Butler quantum, and pipetask."""

import os
import subprocess
import sys
import unittest.mock
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.table import MaskedColumn, Table
from conftest import export_tiny_model
from lsst.images import Box, Image, Mask, MaskedImage, MaskPlane, MaskSchema
from lsst.meas.contextnet import classifier
from lsst.meas.contextnet.classifier import (
    CLASSIFICATION_COLUMNS,
    ContextNetClassifierConfig,
    ContextNetClassifierConnections,
    ContextNetClassifierTask,
    default_model_path,
    model_file,
    seed_from_data_id,
)
from lsst.meas.contextnet.errors import (
    ModelOutputError,
    NoiseEstimateError,
    NoUsablePixelsError,
    PedestalError,
)
from lsst.meas.contextnet.model import ContextNetConfig, build_model
from lsst.meas.contextnet.modelio import ModelFileError, export_model, file_sha256
from lsst.meas.contextnet.pipelinefiles import pipeline_uri
from lsst.pex.config import FieldValidationError

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "architecture": "tiny-test",
    "cutout_size": 12,
    "m": 8,
    "conv_channels": (2,),
    "kernel_size": 3,
    "n_local": 4,
    "global_widths": (8,),
    "predict_widths": (4,),
}
BASELINES = ["extendedness", "sizeExtendedness"]
OUTPUT_COLUMNS = list(CLASSIFICATION_COLUMNS) + BASELINES


def export_tiny(path: Path, seed: int = 0, metadata: dict | None = None, **overrides) -> Path:
    """Export a randomly initialized `TINY` model (12 px cutouts, m = 8)."""
    return export_tiny_model(path, seed, metadata, **(TINY | overrides))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny(tmp_path_factory.mktemp("model") / "tiny.pt")


def make_exposure(
    width: int = 80,
    height: int = 64,
    *,
    x0: int = 0,
    y0: int = 0,
    sigma: float = 4.0,
    seed: int = 3,
) -> MaskedImage:
    """Noise plus a few Gaussian blobs, electrons, with BAD/SATURATED/DETECTED mask planes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = rng.normal(0.0, sigma, (height, width))
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(1.0, 3.0)
        image += 200.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2))
    bbox = Box.factory[y0 : y0 + height, x0 : x0 + width]
    schema = MaskSchema(
        [
            MaskPlane("BAD", "bad"),
            MaskPlane("SATURATED", "saturated"),
            MaskPlane("DETECTED", "detected"),
        ]
    )
    return MaskedImage(
        Image(image.astype(np.float32), bbox=bbox, unit=u.electron),
        mask=Mask(0, schema=schema, bbox=bbox),
        variance=Image(np.full((height, width), sigma**2, np.float32), bbox=bbox, unit=u.electron**2),
    )


def make_catalog(x, y, *, first_id: int = 1000, seed: int = 5) -> Table:
    rng = np.random.default_rng(seed)
    n = len(x)
    ids = first_id + rng.permutation(n).astype(np.int64) * 7  # not sorted: order must be kept
    return Table(
        {
            "sourceId": ids,
            "coord_ra": rng.uniform(10, 11, n) * u.deg,
            "coord_dec": rng.uniform(-5, -4, n) * u.deg,
            "x": np.asarray(x, dtype=np.float64),
            "y": np.asarray(y, dtype=np.float64),
            "psfFlux": rng.uniform(1, 100, n),
            "extendedness": rng.integers(0, 2, n).astype(np.float64),
            "sizeExtendedness": rng.uniform(0, 1, n),
        }
    )


def random_positions(n: int, width: int = 80, height: int = 64, margin: float = 7.0, seed: int = 9):
    rng = np.random.default_rng(seed)
    return rng.uniform(margin, width - 1 - margin, n), rng.uniform(margin, height - 1 - margin, n)


def make_task(model_path: Path, **overrides) -> ContextNetClassifierTask:
    config = ContextNetClassifierConfig()
    config.modelPath = str(model_path)
    config.device = "cpu"
    for key, value in overrides.items():
        setattr(config, key, value)
    config.validate()
    return ContextNetClassifierTask(config=config)


def test_connections_lint_and_dataset_types() -> None:
    from lsst.pipe.base.testUtils import lintConnections

    lintConnections(ContextNetClassifierConnections)
    connections = ContextNetClassifierConnections(config=ContextNetClassifierConfig())
    assert connections.exposure.name == "calexp" and connections.exposure.storageClass == "VisitImage"
    assert connections.catalog.name == "src" and connections.catalog.storageClass == "ArrowAstropy"
    assert connections.classification.name == "contextnet_classification"
    assert set(connections.dimensions) == {"instrument", "visit", "detector"}
    config = ContextNetClassifierConfig()
    config.catalogStorageClass = "SourceCatalog"
    assert ContextNetClassifierConnections(config=config).catalog.storageClass == "SourceCatalog"


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_config_accepts_devices(device: str) -> None:
    config = ContextNetClassifierConfig()
    config.device = device
    # A well-formed request is valid on any machine: the graph may be built on one without the
    # GPU that the nodes running the task have.
    config.validate()


@pytest.mark.parametrize("device", ["gpu", "CUDA", "cuda:", "cuda:x", "mps", ""])
def test_config_rejects_bad_devices(device: str) -> None:
    config = ContextNetClassifierConfig()
    config.device = device
    with pytest.raises(FieldValidationError, match="device"):
        config.validate()


def test_config_rejects_clashing_baseline_columns() -> None:
    config = ContextNetClassifierConfig()
    config.baselineColumns = ["extendedness", "classification_flag"]
    with pytest.raises(FieldValidationError, match="baselineColumns"):
        config.validate()


def test_every_source_gets_a_row_in_order(model_path: Path) -> None:
    x, y = random_positions(30)
    catalog = make_catalog(x, y)
    task = make_task(model_path)
    out = task.run(make_exposure(), catalog, seed=11).classification
    assert out.colnames == OUTPUT_COLUMNS
    assert len(out) == len(catalog)
    np.testing.assert_array_equal(out["sourceId"], catalog["sourceId"])
    for name in ("coord_ra", "coord_dec", "x", "y", *BASELINES):
        np.testing.assert_array_equal(np.asarray(out[name]), np.asarray(catalog[name]))
    assert out["coord_ra"].unit == u.deg
    for name, (dtype, _) in CLASSIFICATION_COLUMNS.items():
        assert out[name].dtype == np.dtype(dtype), name
        assert out[name].description
    prob = out["classification_galaxyProb"]
    assert np.all((prob >= 0) & (prob <= 1))
    assert np.all(np.isfinite(out["classification_galaxyProbErr"]))
    # 30 sources, m = 8, nEnsemble = 5: ceil(150 / 8) = 19 sets, every source in 5 or 6.
    assert set(np.unique(out["classification_nSets"])) <= {5, 6}
    assert not np.any(out["classification_flag"])
    assert out.meta["contextnet_model_sha256"] == file_sha256(model_path)
    assert out.meta["contextnet_seed"] == 11
    assert task.metadata["n_sets"] == 19
    assert task.metadata["model.sha256"] == file_sha256(model_path)
    assert task.metadata["model.m"] == 8 and task.metadata["model.cutout_size"] == 12
    assert "tiny-test" in task.metadata["model.metadata_json"]
    for key in ("timing.cutouts", "timing.model", "timing.load_model"):
        assert task.metadata[key] > 0
    # @timeMethod on run() and prepare_inputs().
    for method in ("run", "prepare_inputs"):
        assert task.metadata[f"{method}EndCpuTime"] >= task.metadata[f"{method}StartCpuTime"]


def test_same_seed_same_result_and_seed_matters(model_path: Path) -> None:
    x, y = random_positions(40)
    catalog = make_catalog(x, y)
    exposure = make_exposure()
    task = make_task(model_path)
    first = task.run(exposure, catalog, seed=1).classification
    again = make_task(model_path).run(exposure, catalog, seed=1).classification
    other = task.run(exposure, catalog, seed=2).classification
    for name in ("classification_galaxyProb", "classification_galaxyProbErr", "classification_nSets"):
        np.testing.assert_array_equal(first[name], again[name])
    assert not np.array_equal(first["classification_galaxyProb"], other["classification_galaxyProb"])
    # Without an explicit seed the configured one is used.
    configured = make_task(model_path, seed=1).run(exposure, catalog).classification
    np.testing.assert_array_equal(first["classification_galaxyProb"], configured["classification_galaxyProb"])


def test_symmetries_average_the_probabilities(model_path: Path) -> None:
    x, y = random_positions(40)
    catalog = make_catalog(x, y)
    exposure = make_exposure()
    plain = make_task(model_path).run(exposure, catalog, seed=1).classification
    averaged = make_task(model_path, nSymmetries=8).run(exposure, catalog, seed=1).classification
    probability = np.asarray(averaged["classification_galaxyProb"])
    assert np.all((probability >= 0) & (probability <= 1))
    assert np.abs(probability - np.asarray(plain["classification_galaxyProb"])).max() > 1e-4
    np.testing.assert_array_equal(averaged["classification_nSets"], plain["classification_nSets"])
    with pytest.raises(FieldValidationError):
        make_task(model_path, nSymmetries=3)


def test_model_is_loaded_once(model_path: Path) -> None:
    task = make_task(model_path)
    assert task.load_model() is task.load_model()
    x, y = random_positions(10)
    task.run(make_exposure(), make_catalog(x, y))
    assert task.load_model() is task.load_model()


def test_empty_catalog_gives_empty_table(model_path: Path) -> None:
    catalog = make_catalog([], [])
    out = make_task(model_path).run(make_exposure(), catalog).classification
    assert len(out) == 0
    assert out.colnames == OUTPUT_COLUMNS
    for name, (dtype, _) in CLASSIFICATION_COLUMNS.items():
        assert out[name].dtype == np.dtype(dtype), name


def test_edge_beyond_and_non_finite_centroids(model_path: Path) -> None:
    x, y = random_positions(12)
    # interior, on the left edge, near the top edge, beyond the image, non-finite
    x = np.concatenate([x, [0.0, 40.0, -10.0, 100.0, np.nan]])
    y = np.concatenate([y, [30.0, 62.4, 30.0, 30.0, 20.0]])
    catalog = make_catalog(x, y)
    out = make_task(model_path).run(make_exposure(), catalog).classification
    assert len(out) == 17
    edge = np.asarray(out["classification_flag_edge"])
    np.testing.assert_array_equal(edge, [False] * 12 + [True, True, True, True, False])
    prob = np.asarray(out["classification_galaxyProb"])
    assert np.all(np.isfinite(prob[:14])) and np.all((prob[:14] >= 0) & (prob[:14] <= 1))
    assert np.all(np.isnan(prob[14:])) and np.all(out["classification_nSets"][14:] == 0)
    flag = np.asarray(out["classification_flag"])
    np.testing.assert_array_equal(flag, [False] * 12 + [True] * 5)
    assert not np.any(out["classification_flag_fewSources"])  # 14 classifiable >= m = 8


def test_masked_centroids_are_not_finite_centroids(model_path: Path) -> None:
    x, y = random_positions(10)
    catalog = make_catalog(x, y)
    catalog["x"] = MaskedColumn(catalog["x"], mask=[False] * 8 + [True, False])
    catalog["y"] = MaskedColumn(catalog["y"], mask=[False] * 9 + [True])
    out = make_task(model_path).run(make_exposure(), catalog).classification
    assert len(out) == 10
    prob = np.asarray(out["classification_galaxyProb"])
    assert np.all(np.isnan(prob[8:])) and np.all(np.isfinite(prob[:8]))
    np.testing.assert_array_equal(out["classification_flag"], [False] * 8 + [True, True])
    assert np.isnan(out["x"][8]) and np.isnan(out["y"][9]) and np.isfinite(out["x"][9])


def test_no_classifiable_source(model_path: Path) -> None:
    catalog = make_catalog([np.nan, 500.0], [10.0, 10.0])
    out = make_task(model_path).run(make_exposure(), catalog).classification
    assert len(out) == 2 and np.all(np.isnan(out["classification_galaxyProb"]))
    assert np.all(out["classification_flag"]) and np.all(out["classification_nSets"] == 0)
    np.testing.assert_array_equal(out["classification_flag_edge"], [False, True])


def test_image_with_offset_origin(model_path: Path) -> None:
    # Centroids are in the parent frame: with the image at x0 = 200, y0 = 100, x = 200 is the
    # first column (edge), x = 240 the middle.
    exposure = make_exposure(x0=200, y0=100)
    catalog = make_catalog([200.0, 240.0, 240.0, 215.0] * 3, [132.0, 132.0, 101.0, 140.0] * 3)
    out = make_task(model_path).run(exposure, catalog).classification
    np.testing.assert_array_equal(out["classification_flag_edge"], [True, False, True, False] * 3)
    assert np.all(np.isfinite(out["classification_galaxyProb"]))


def test_nan_pixels_and_masked_pixels(model_path: Path) -> None:
    exposure = make_exposure()
    exposure.image.array[20, 30] = np.nan
    saturated = np.zeros((64, 80), bool)
    saturated[45, 60] = True
    exposure.mask.set("SATURATED", saturated)
    detected = np.zeros((64, 80), bool)
    detected[40:50, 10:20] = True
    exposure.mask.set("DETECTED", detected)  # not a bad plane
    x, y = random_positions(10)
    catalog = make_catalog(np.concatenate([x, [31.0, 61.0, 15.0]]), np.concatenate([y, [21.0, 44.0, 45.0]]))
    for planes in (["BAD", "SATURATED"], ["SAT"]):  # lsst.images and afw names
        out = make_task(model_path, badMaskPlanes=planes).run(exposure, catalog).classification
        bad = np.asarray(out["classification_flag_badPixels"])
        assert bad[10] and bad[11] and not bad[12]
        assert np.all(out["classification_flag"][bad]) and np.all(
            np.isfinite(out["classification_galaxyProb"])
        )
    out = make_task(model_path, badMaskPlanes=[]).run(exposure, catalog).classification
    assert out["classification_flag_badPixels"][10] and not out["classification_flag_badPixels"][11]


def test_cutouts_without_enough_good_pixels_are_not_classified(model_path: Path) -> None:
    exposure = make_exposure()
    exposure.image.array[:, :26] = np.nan  # the left third of the image is lost
    x, y = random_positions(10)
    catalog = make_catalog(np.concatenate([x, [3.0, 12.0]]), np.concatenate([y, [30.0, 30.0]]))
    out = make_task(model_path).run(exposure, catalog).classification
    no_data = np.asarray(out["classification_flag_noData"])
    # 12 px cutouts: at x = 3 all good pixels are NaN; at x = 12 fewer than half are good.
    assert no_data[10] and no_data[11]
    assert np.all(np.isnan(out["classification_galaxyProb"][no_data]))
    assert np.all(out["classification_flag"][no_data])
    assert np.all(np.isfinite(out["classification_galaxyProb"][~no_data]))
    exposure.image.array[...] = np.nan
    with pytest.raises(NoUsablePixelsError, match="no usable pixels"):
        make_task(model_path).run(exposure, catalog)


def test_every_source_without_good_pixels_in_a_good_image_is_flagged(
    model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exposure = make_exposure()
    exposure.image.array[20:44, 20:44] = np.nan  # a lost patch; the rest of the image is good
    catalog = make_catalog(np.array([31.0, 32.5]), np.array([32.0, 31.0]))
    with caplog.at_level("WARNING"):
        out = make_task(model_path).run(exposure, catalog).classification
    assert len(out) == 2 and np.all(out["classification_flag_noData"]) and np.all(out["classification_flag"])
    assert np.all(np.isnan(out["classification_galaxyProb"]))
    assert "None of the 2 sources" in caplog.text


def test_cutouts_mostly_outside_the_image_are_not_classified(model_path: Path) -> None:
    # 12 px cutouts on an 80 x 64 image: at the corner (0, 0) 6 x 6 of the 144 pixels are in the
    # image, at (79.4, 63.4) 7 x 7; at (0, 30) half of them, enough to be classified.
    x, y = random_positions(10)
    catalog = make_catalog(np.concatenate([x, [0.0, 79.4, 0.0]]), np.concatenate([y, [0.0, 63.4, 30.0]]))
    out = make_task(model_path).run(make_exposure(), catalog).classification
    np.testing.assert_array_equal(out["classification_flag_noData"], [False] * 10 + [True, True, False])
    np.testing.assert_array_equal(out["classification_flag_edge"], [False] * 10 + [True] * 3)
    prob = np.asarray(out["classification_galaxyProb"])
    assert np.all(np.isnan(prob[10:12])) and np.all(np.isfinite(prob[[*range(10), 12]]))


def test_pooling_model_with_few_sources_is_flagged(tmp_path: Path) -> None:
    pool = export_tiny(tmp_path / "pool.pt", global_kind="pool")
    x, y = random_positions(5)
    catalog = make_catalog(x, y)
    out = make_task(pool).run(make_exposure(), catalog).classification  # minContextSources = 50
    assert np.all(out["classification_flag_fewSources"]) and np.all(out["classification_flag"])
    assert np.all(np.isfinite(out["classification_galaxyProb"]))
    out = make_task(pool, minContextSources=5).run(make_exposure(), catalog).classification
    assert not np.any(out["classification_flag_fewSources"])
    # Random sets of 8 from 5 sources repeat them.
    out = make_task(pool, minContextSources=5, poolSetSize=8).run(make_exposure(), catalog).classification
    assert np.all(out["classification_flag_fewSources"])


def test_pooling_model_in_one_set_has_no_spread(tmp_path: Path) -> None:
    pool = export_tiny(tmp_path / "pool.pt", global_kind="pool")
    x, y = random_positions(30)
    catalog = make_catalog(x, y)
    out = make_task(pool, minContextSources=5).run(make_exposure(), catalog).classification
    # All sources in one set: a spread over one set is not measured.
    assert np.all(out["classification_nSets"] == 1)
    assert np.all(np.isnan(out["classification_galaxyProbErr"]))
    assert np.all(np.isfinite(out["classification_galaxyProb"]))
    assert out.meta["contextnet_nEnsemble"] == 1 and out.meta["contextnet_setSize"] == 30
    out = make_task(pool, minContextSources=5, poolSetSize=8).run(make_exposure(), catalog).classification
    assert np.all(out["classification_nSets"] >= 5)
    assert np.all(np.isfinite(out["classification_galaxyProbErr"]))
    assert out.meta["contextnet_nEnsemble"] == 5 and out.meta["contextnet_setSize"] == 8


def test_local_only_model_is_never_short_of_context(tmp_path: Path) -> None:
    local = export_tiny(tmp_path / "local.pt", context=False)
    x, y = random_positions(5)  # fewer than m = 8: no context is needed
    out = make_task(local).run(make_exposure(), make_catalog(x, y)).classification
    assert not np.any(out["classification_flag_fewSources"]) and not np.any(out["classification_flag"])
    assert np.all(np.isfinite(out["classification_galaxyProb"]))
    assert np.all(out["classification_nSets"] == 1)


def test_model_output_that_is_not_a_probability_is_an_error(tmp_path: Path) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        module = build_model(ContextNetConfig(**TINY))
    with torch.no_grad():
        module.predict_first.bias.fill_(float("nan"))
    path = tmp_path / "nan.pt"
    export_model(module, path, {"training": {"data": "none: a broken model for tests"}})
    x, y = random_positions(10)
    with pytest.raises(ModelOutputError, match="not finite or not in"):
        make_task(path).run(make_exposure(), make_catalog(x, y))


def test_fewer_sources_than_m(model_path: Path) -> None:
    catalog = make_catalog([20.0, 40.0, 60.0], [20.0, 30.0, 40.0])
    out = make_task(model_path, nEnsemble=3).run(make_exposure(), catalog).classification
    assert len(out) == 3
    assert np.all(out["classification_flag_fewSources"]) and np.all(out["classification_flag"])
    assert np.all(np.isfinite(out["classification_galaxyProb"]))
    np.testing.assert_array_equal(out["classification_nSets"], [3, 3, 3])


def test_missing_columns_are_reported(model_path: Path) -> None:
    catalog = make_catalog([20.0], [20.0])
    catalog.remove_column("sizeExtendedness")
    with pytest.raises(ValueError, match="sizeExtendedness"):
        make_task(model_path).run(make_exposure(), catalog)
    renamed = make_catalog([20.0], [20.0])
    renamed.rename_column("x", "slot_Centroid_x")
    out = make_task(model_path, xColumn="slot_Centroid_x").run(make_exposure(), renamed).classification
    assert out.colnames == OUTPUT_COLUMNS


def test_bad_variance_is_an_algorithm_error(model_path: Path) -> None:
    exposure = make_exposure()
    exposure.variance.array[...] = 0.0
    with pytest.raises(NoiseEstimateError, match="noise_sigma"):
        make_task(model_path).run(exposure, make_catalog([20.0], [20.0]))


def test_missing_model_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "model.pt"
    with pytest.raises(FieldValidationError, match=f"{missing}.*does not exist"):
        make_task(missing)


def test_default_model_is_the_shipped_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = ContextNetClassifierConfig()
    config.device = "cpu"
    task = ContextNetClassifierTask(config=config)
    assert task.model_path == default_model_path()
    assert task.model_path.parts[-4:] == ("meas", "contextnet", "data", "contextnet.pt")
    assert task.load_model().sha256 == file_sha256(task.model_path)
    # Environment variables are expanded.
    monkeypatch.setenv("CONTEXTNET_TEST_DIR", str(tmp_path))
    assert model_file("$CONTEXTNET_TEST_DIR/model.pt") == tmp_path / "model.pt"


def test_corrupt_model_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"this is not a TorchScript archive" * 10)
    with pytest.raises(FieldValidationError, match=str(path)):
        make_task(path)


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"cutout_size": 16}, "rejects"),  # the network was built for 12x12 cutouts
        ({"m": 5}, "rejects"),  # ... and for sets of 8
        ({"normalization": {"kind": "zscale"}}, "normalization"),
        ({"normalization": {"kind": "asinh_noise", "softening": -1}}, "softening"),
        ({"position_features": {"kind": "sky"}}, "position features"),
    ],
)
def test_model_that_disagrees_with_its_metadata(tmp_path: Path, metadata: dict, match: str) -> None:
    path = export_tiny(tmp_path / "mismatch.pt", metadata=metadata)
    with pytest.raises(FieldValidationError, match=match) as info:
        make_task(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, ModelFileError)


def test_cuda_requested_without_gpu(model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    task = make_task(model_path, device="cuda")  # valid: the device is checked where it runs
    x, y = random_positions(10)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        task.run(make_exposure(), make_catalog(x, y))
    # 'auto' falls back to the CPU.
    assert str(make_task(model_path, device="auto").load_model().device) == "cpu"


def test_model_and_device_are_checked_when_the_pipeline_is_built(
    tmp_path: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """validate() (run by pipetask once, before the graph and any read) checks the model file."""
    config = ContextNetClassifierConfig()
    config.modelPath = str(tmp_path / "missing.pt")
    with pytest.raises(FieldValidationError, match="missing.pt.*config.modelPath.*does not exist") as info:
        config.validate()
    assert info.value.fieldName == "modelPath"
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a model" * 50)
    config.modelPath = str(corrupt)
    with pytest.raises(FieldValidationError, match="corrupt.pt.*config.modelPath") as info:
        config.validate()
    # The model file's fault, not the device's.
    assert info.value.fieldName == "modelPath"
    assert isinstance(info.value.__cause__, ModelFileError)
    # A GPU the building host lacks is not the configuration's fault.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config.modelPath, config.device = str(model_path), "cuda"
    config.validate()
    # A Butler model is checked when it is read, not here.
    config.modelPath, config.useButlerModel = str(tmp_path / "missing.pt"), True
    config.validate()


def test_image_that_is_not_sky_subtracted(model_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    exposure = make_exposure()
    exposure.image.array[...] += 50.0  # a pedestal of 12.5 noise units
    x, y = random_positions(10)
    task = make_task(model_path)
    with caplog.at_level("WARNING"):
        result = task.run(exposure, make_catalog(x, y))
    assert "does not look sky-subtracted" in caplog.text
    assert task.metadata["pedestal_sigma"] == pytest.approx(12.5, abs=0.5)
    assert len(result.classification) == 10
    with pytest.raises(PedestalError, match="not look sky-subtracted"):
        make_task(model_path, pedestalAction="raise").run(exposure, make_catalog(x, y))
    task = make_task(model_path, pedestalAction="raise")
    task.run(make_exposure(), make_catalog(x, y))  # a sky-subtracted image passes
    assert abs(task.metadata["pedestal_sigma"]) < 1.0


def test_pedestal_median_is_taken_on_a_grid(model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 80x64 pixels and at most 320 sampled: a step of 4, every 4th row and column.
    monkeypatch.setattr(classifier, "PEDESTAL_SAMPLE_PIXELS", 320)
    exposure = make_exposure()
    exposure.image.array[...] = 0.0
    exposure.image.array[::4, ::4] = 40.0  # 10 noise units on the grid, 0 elsewhere
    task = make_task(model_path)
    task._check_pedestal(exposure.image.array, 4.0)
    assert task.metadata["pedestal_sigma"] == 10.0
    monkeypatch.setattr(classifier, "PEDESTAL_SAMPLE_PIXELS", 80 * 64)  # every pixel: median 0
    task._check_pedestal(exposure.image.array, 4.0)
    assert task.metadata["pedestal_sigma"] == 0.0


def test_output_columns_carry_units(model_path: Path) -> None:
    x, y = random_positions(5)
    catalog = make_catalog(x, y)
    table = make_task(model_path).run(make_exposure(), catalog).classification
    assert str(table["coord_ra"].unit) == "deg" and str(table["x"].unit) == "pix"
    catalog["coord_ra"].unit = catalog["coord_dec"].unit = None
    table = make_task(model_path, coordUnit="rad").run(make_exposure(), catalog).classification
    assert str(table["coord_dec"].unit) == "rad"
    assert all(table[name].description for name in table.colnames)


def test_seed_from_data_id_is_stable() -> None:
    data_id = {"instrument": "SimCam", "visit": 3, "detector": 1}
    seed = seed_from_data_id(0, data_id)
    # A fixed value: the seed must not depend on the process (Python's hash is salted).
    assert seed == seed_from_data_id(0, dict(reversed(list(data_id.items()))))
    assert seed == 6137835907005175078
    assert seed_from_data_id(1, data_id) != seed
    assert seed_from_data_id(0, data_id | {"visit": 4}) != seed
    assert 0 <= seed < 2**64


# --- Butler: one quantum through runQuantum ---------------------------------------------------


def make_visit_image(
    visit: int, detector: int, size: int = 96, seed: int = 4, *, fwhm: float | None = None, band: str = "r"
):
    """A simulated-looking VisitImage built with the repo area's builder (PSF of mean ``fwhm``)."""
    from astropy.time import Time
    from lsst.meas.contextnet.sim.psf import PsfField
    from lsst.meas.contextnet.sim.repo import make_tan_wcs, make_visit_image

    exposure = make_exposure(size, size, seed=seed)
    psf = PsfField.from_rng(np.random.default_rng(seed), size, size, visit_fwhm=fwhm).to_piff()
    wcs = make_tan_wcs(150.0, 2.0, size, size)
    saturated = np.zeros((size, size), bool)
    saturated[50, 50] = True
    return make_visit_image(
        exposure.image.array,
        exposure.variance.array,
        {"SAT": saturated},
        wcs,
        psf,
        visit=visit,
        detector=detector,
        band=band,
        exposure_time_s=30.0,
        begin=Time("2026-01-01T03:00:00", scale="tai"),
    ), wcs


def test_run_quantum_with_butler(tmp_path: Path, model_path: Path) -> None:
    from astropy.time import Time
    from lsst.daf.butler import DatasetType
    from lsst.daf.butler.tests import makeTestCollection, makeTestRepo
    from lsst.meas.contextnet.instrument import SimCam
    from lsst.meas.contextnet.sim.repo import register_dataset_types, register_visit
    from lsst.pipe.base.testUtils import assertValidOutput, makeQuantum, runTestQuantum

    repo = makeTestRepo(str(tmp_path / "repo"))
    SimCam(n_detectors=2).register(repo.registry)
    register_dataset_types(repo)
    repo.registry.registerDatasetType(
        DatasetType(
            "contextnet_classification",
            ("instrument", "visit", "detector"),
            "ArrowAstropy",
            universe=repo.dimensions,
        )
    )
    butler = makeTestCollection(repo, uniqueId="quantum")
    calexp, wcs = make_visit_image(visit=7, detector=1)
    register_visit(
        butler,
        visit=7,
        band="r",
        exposure_time_s=30.0,
        begin=Time("2026-01-01T03:00:00", scale="tai"),
        detector_wcs={1: wcs},
        width=96,
        height=96,
    )
    x, y = random_positions(25, 96, 96)
    catalog = make_catalog(np.append(x, 50.0), np.append(y, 50.0))
    data_id = {"instrument": "SimCam", "visit": 7, "detector": 1}
    butler.put(calexp, "calexp", data_id)
    butler.put(catalog, "src", data_id)

    task = make_task(model_path)
    quantum = makeQuantum(
        task,
        butler,
        data_id,
        {"exposure": data_id, "catalog": data_id, "classification": data_id},
    )
    # runQuantum passes the inputs and the data-ID seed to run.
    run = runTestQuantum(task, butler, quantum, mockRun=True)
    run.assert_called_once()
    assert run.call_args.kwargs["seed"] == seed_from_data_id(0, data_id)
    assert len(run.call_args.kwargs["catalog"]) == 26

    runTestQuantum(task, butler, quantum, mockRun=False)
    out = butler.get("contextnet_classification", data_id)
    assert out.colnames == OUTPUT_COLUMNS
    np.testing.assert_array_equal(out["sourceId"], catalog["sourceId"])
    assert out["classification_flag_badPixels"][-1]  # the saturated pixel under the last source
    assert np.all((out["classification_galaxyProb"] >= 0) & (out["classification_galaxyProb"] <= 1))
    expected = task.run(calexp, catalog, seed=seed_from_data_id(0, data_id))
    assertValidOutput(task, expected)
    np.testing.assert_array_equal(
        out["classification_galaxyProb"], expected.classification["classification_galaxyProb"]
    )
    for key in ("timing.read", "timing.write", "timing.cutouts", "timing.model"):
        assert task.metadata[key] > 0
    assert task.metadata["cpu_threads"] == 1  # the quantum's cores: one unless given more

    # A quantum given two cores runs PyTorch on two threads, then restores the process's setting.
    from lsst.pipe.base import ExecutionResources, QuantumContext

    seen = []
    real_run = task.run

    def recording_run(**kwargs):
        seen.append(torch.get_num_threads())
        return real_run(**kwargs)

    before = torch.get_num_threads()
    connections = task.config.ConnectionsClass(config=task.config)
    input_refs, output_refs = connections.buildDatasetRefs(quantum)
    context = QuantumContext(butler, quantum, resources=ExecutionResources(num_cores=2))
    with (
        unittest.mock.patch.object(task, "run", side_effect=recording_run),
        unittest.mock.patch("lsst.pipe.base.QuantumContext.put"),  # the outputs exist already
    ):
        with classifier.cpu_threads(1):
            task.runQuantum(context, input_refs, output_refs)
            assert torch.get_num_threads() == 1
    assert seen == [2] and task.metadata["cpu_threads"] == 2
    assert torch.get_num_threads() == before


def test_cpu_threads_sets_and_restores_pytorch_threads() -> None:
    before = torch.get_num_threads()
    with classifier.cpu_threads(2):
        assert torch.get_num_threads() == 2
        with classifier.cpu_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), classifier.cpu_threads(2):
        raise RuntimeError("restored on errors too")
    assert torch.get_num_threads() == before
    with classifier.cpu_threads(0):
        assert torch.get_num_threads() == 1


# --- End to end: the real pipetask on a simulated repository ---------------------------------


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, (
        f"{' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


@pytest.mark.slow
def test_pipetask_end_to_end(tmp_path: Path) -> None:
    from lsst.daf.butler import Butler

    bin_dir = Path(sys.executable).parent
    repo = tmp_path / "repo"
    model = export_tiny(tmp_path / "model.pt", cutout_size=28, m=16)
    _run(
        [str(bin_dir / "contextnet"), "simulate", "--repo", str(repo), "--collection", "sim"]
        + ["--visits", "2", "--size", "512", "--seed", "1"],
        tmp_path,
    )
    for output in ("out1", "out2"):
        _run(
            [str(bin_dir / "pipetask"), "run", "-b", str(repo), "-i", "sim", "-o", output]
            + ["-p", str(REPO_ROOT / "pipelines" / "ContextNet.yaml")]
            + ["-c", f"contextnetClassifier:modelPath={model}", "-c", "contextnetClassifier:device=cpu"]
            + ["--register-dataset-types"],
            tmp_path,
        )

    butler = Butler.from_config(str(repo))
    src_refs = butler.query_datasets("src", collections="sim")
    assert len({ref.dataId["visit"] for ref in src_refs}) == 2
    for output in ("out1", "out2"):
        out_refs = butler.query_datasets("contextnet_classification", collections=output)
        assert {ref.dataId for ref in out_refs} == {ref.dataId for ref in src_refs}
    for ref in src_refs:
        src = butler.get(ref)
        first = butler.get("contextnet_classification", ref.dataId, collections="out1")
        second = butler.get("contextnet_classification", ref.dataId, collections="out2")
        assert len(src) > 0 and len(first) == len(src)
        np.testing.assert_array_equal(first["sourceId"], src["sourceId"])
        for name in BASELINES:
            np.testing.assert_array_equal(np.asarray(first[name]), np.asarray(src[name]))
        prob = np.asarray(first["classification_galaxyProb"])
        ok = np.isfinite(prob)
        assert ok.any()
        assert np.all((prob[ok] >= 0) & (prob[ok] <= 1))
        assert np.all(np.asarray(first["classification_flag"])[~ok])
        np.testing.assert_array_equal(prob, np.asarray(second["classification_galaxyProb"]))

    # Provenance and units survive a default butler.get (the repository's own table formatter).
    table = butler.get("contextnet_classification", src_refs[0].dataId, collections="out1")
    assert table.meta["contextnet_model_sha256"] == file_sha256(model)
    assert table.meta["contextnet_nEnsemble"] == 5 and "contextnet_seed" in table.meta
    assert str(table["coord_ra"].unit) == "deg" and str(table["x"].unit) == "pix"
    butler.close()

    # The model as a Butler dataset: ingest it, run with useButlerModel, same probabilities.
    _run([str(bin_dir / "contextnet"), "ingest-model", "--repo", str(repo), "--model", str(model)], tmp_path)
    pipeline = ["-p", pipeline_uri()]  # the resource URI an installed package is run by
    butler_model = ["-c", "contextnetClassifier:useButlerModel=True", "-c", "contextnetClassifier:device=cpu"]
    inputs = ["-i", "sim,pretrained_models/contextnet"]
    graph = _run(
        [str(bin_dir / "pipetask"), "qgraph", "-b", str(repo), *inputs, *pipeline, *butler_model]
        + ["-o", "out3", "--show", "graph"],
        tmp_path,
    )
    assert "contextnet_model" in graph.stdout
    _run(
        [str(bin_dir / "pipetask"), "run", "-b", str(repo), *inputs, "-o", "out3", *pipeline, *butler_model]
        + ["--register-dataset-types"],
        tmp_path,
    )
    butler = Butler.from_config(str(repo))
    for ref in src_refs:
        first = butler.get("contextnet_classification", ref.dataId, collections="out1")
        third = butler.get("contextnet_classification", ref.dataId, collections="out3")
        np.testing.assert_array_equal(
            np.asarray(first["classification_galaxyProb"]), np.asarray(third["classification_galaxyProb"])
        )
        assert third.meta["contextnet_model_sha256"] == file_sha256(model)
        metadata = butler.get("contextnetClassifier_metadata", ref.dataId, collections="out3")
        assert metadata["contextnetClassifier"]["model.sha256"] == file_sha256(model)

    # Resuming an interrupted run: one quantum done, another with only its log written.
    file_model = ["-c", f"contextnetClassifier:modelPath={model}", "-c", "contextnetClassifier:device=cpu"]
    command = [str(bin_dir / "pipetask"), "run", "-b", str(repo), "-i", "sim", "-o", "out4", *pipeline]
    _run(command + file_model + ["-d", "visit = 0"], tmp_path)
    _run(command + file_model + ["-d", "visit = 1", "--extend-run"], tmp_path)
    done = {
        ref.dataId["visit"]: ref
        for ref in butler.query_datasets("contextnet_classification", collections="out4")
    }
    butler.close()
    assert set(done) == {0, 1}
    writer = Butler.from_config(str(repo), writeable=True)
    # Killed while running: the log was written, the output and the metadata (written last) not.
    metadata = writer.query_datasets(
        "contextnetClassifier_metadata", collections="out4", where="instrument = 'SimCam' AND visit = 1"
    )
    assert writer.query_datasets(
        "contextnetClassifier_log", collections="out4", where="instrument = 'SimCam' AND visit = 1"
    )
    writer.pruneDatasets([done[1], *metadata], disassociate=True, unstore=True, purge=True)
    writer.close()
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    blocked = subprocess.run(
        command + file_model + ["--extend-run", "--skip-existing"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert blocked.returncode != 0  # the partial quantum's log blocks a plain resume
    _run(command + file_model + ["--extend-run", "--skip-existing", "--clobber-outputs"], tmp_path)
    butler = Butler.from_config(str(repo))
    resumed = {
        ref.dataId["visit"]: ref
        for ref in butler.query_datasets("contextnet_classification", collections="out4")
    }
    assert set(resumed) == {0, 1}
    assert resumed[0].id == done[0].id  # the finished quantum was not rerun
    assert resumed[1].id != done[1].id  # the interrupted one was
    butler.close()


def test_model_output_above_one_is_an_error(model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lsst.meas.contextnet import ensemble

    real = ensemble.ensemble_predict

    def five(*args, **kwargs):
        result = real(*args, **kwargs)
        return result._replace(mean=np.full_like(result.mean, 5.0))

    monkeypatch.setattr(ensemble, "ensemble_predict", five)
    x, y = random_positions(10)
    with pytest.raises(ModelOutputError, match="not finite or not in"):
        make_task(model_path).run(make_exposure(), make_catalog(x, y))


NARROW_CARD = {
    "training": {
        "data": {"manifest": {"world": {"name": "narrow", "fwhm_range": [0.5, 1.3], "bands": ["r"]}}},
        "seed": 0,
    }
}


@pytest.mark.parametrize(
    ("fwhm", "band", "outside", "reason"),
    [
        (0.9, "r", False, None),
        (2.4, "r", True, 'outside the training range 0.50"-1.30"'),
        (0.9, "g", True, "band 'g'"),
    ],
)
def test_exposures_outside_the_training_conditions_are_flagged(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fwhm: float,
    band: str,
    outside: bool,
    reason: str | None,
) -> None:
    calexp, _ = make_visit_image(visit=7, detector=1, fwhm=fwhm, band=band)
    task = make_task(export_tiny(tmp_path / "narrow.pt", metadata=NARROW_CARD))
    x, y = random_positions(20, 96, 96)
    with caplog.at_level("WARNING"):
        out = task.run(calexp, make_catalog(x, y)).classification
    assert out["classification_flag_outsideTraining"].tolist() == [outside] * 20
    # A caution, not a failure: the sources are classified and the general flag is not set.
    assert np.isfinite(out["classification_galaxyProb"]).all()
    assert not out["classification_flag"].any()
    assert task.metadata["training_conditions"] == ("outside" if outside else "inside")
    assert task.metadata["psf_fwhm"] == pytest.approx(fwhm, rel=0.08)
    assert ("outside the conditions the model was trained on" in caplog.text) is outside
    if reason is not None:
        assert reason in caplog.text


def test_models_without_training_worlds_flag_nothing(model_path: Path) -> None:
    calexp, _ = make_visit_image(visit=7, detector=1, fwhm=2.4)
    x, y = random_positions(20, 96, 96)
    task = make_task(model_path)
    out = task.run(calexp, make_catalog(x, y)).classification
    assert not out["classification_flag_outsideTraining"].any()
    # A PSF-blind model with nothing to check against does not draw the PSF at all.
    assert task.metadata["training_conditions"] == "unchecked"
    assert np.isnan(task.metadata["psf_fwhm"])


def test_an_image_without_psf_or_band_is_not_checked(tmp_path: Path) -> None:
    # A MaskedImage has no PSF model, sky projection or band: nothing to compare, nothing flagged.
    task = make_task(export_tiny(tmp_path / "narrow.pt", metadata=NARROW_CARD))
    x, y = random_positions(20)
    out = task.run(make_exposure(), make_catalog(x, y)).classification
    assert not out["classification_flag_outsideTraining"].any()
    assert task.metadata["training_conditions"] == "unchecked"
    assert np.isnan(task.metadata["psf_fwhm"])


class _UndrawablePsf:
    def compute_kernel_image(self, x: float, y: float):
        raise RuntimeError("position outside the PSF model's bounds")


def test_a_psf_blind_model_classifies_when_the_psf_cannot_be_drawn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from types import SimpleNamespace

    calexp, _ = make_visit_image(visit=7, detector=1, fwhm=2.4)
    parts = ("image", "variance", "mask", "bbox", "detector", "band", "sky_projection")
    exposure = SimpleNamespace(psf=_UndrawablePsf(), **{name: getattr(calexp, name) for name in parts})
    task = make_task(export_tiny(tmp_path / "narrow.pt", metadata=NARROW_CARD))
    x, y = random_positions(20, 96, 96)
    with caplog.at_level("INFO"):
        out = task.run(exposure, make_catalog(x, y)).classification
    assert np.isfinite(out["classification_galaxyProb"]).all()
    assert "Could not draw the PSF model" in caplog.text and "outside the PSF model's bounds" in caplog.text
    # The band is still checked, and is a training band.
    assert task.metadata["training_conditions"] == "inside" and np.isnan(task.metadata["psf_fwhm"])
    assert not out["classification_flag_outsideTraining"].any()


def test_butler_model_cache_is_per_user_and_checked(
    model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lsst.meas.contextnet.butlermodel import butler_model_file

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    payload = np.frombuffer(model_path.read_bytes(), dtype=np.uint8)
    path = butler_model_file(payload)
    assert path.parent == tmp_path / f"contextnet-models-{os.getuid()}"
    assert path.name == f"{file_sha256(model_path)}.pt" and path.read_bytes() == model_path.read_bytes()
    # A cached file whose bytes changed (same size) is written again.
    damaged = bytearray(path.read_bytes())
    damaged[100] ^= 0xFF
    path.write_bytes(bytes(damaged))
    assert butler_model_file(payload) == path and path.read_bytes() == model_path.read_bytes()


def test_missing_input_values_stay_missing(model_path: Path) -> None:
    from astropy.table import MaskedColumn

    x, y = random_positions(6)
    catalog = make_catalog(x, y)
    missing_id, missing_ext = np.arange(6) == 1, np.arange(6) == 2
    catalog["sourceId"] = MaskedColumn(catalog["sourceId"], mask=missing_id)
    catalog["extendedness"] = MaskedColumn(catalog["extendedness"], mask=missing_ext)
    out = make_task(model_path).run(make_exposure(), catalog).classification
    np.testing.assert_array_equal(np.ma.getmaskarray(out["sourceId"]), missing_id)
    np.testing.assert_array_equal(np.ma.getmaskarray(out["extendedness"]), missing_ext)
    kept = ~missing_id
    np.testing.assert_array_equal(np.asarray(out["sourceId"])[kept], np.asarray(catalog["sourceId"])[kept])
    # Complete columns stay plain.
    assert not isinstance(out["sizeExtendedness"], MaskedColumn)
