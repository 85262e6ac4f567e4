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

"""Tests of lsst.meas.contextnet.evaluation.scoring (joining, evaluation, task, CLI) and plotting."""

import argparse
import json
import math

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table
from lsst.meas.contextnet.cli.evaluate import add_subcommand
from lsst.meas.contextnet.evaluation.matching import concatenate_joins, join_classification_truth
from lsst.meas.contextnet.evaluation.metrics import compute_metrics
from lsst.meas.contextnet.evaluation.plotting import (
    plot_magnitude_performance,
    plot_probability_vs_size,
    plot_probability_vs_truth,
    plot_reliability_diagram,
)
from lsst.meas.contextnet.evaluation.scoring import CLASSIFIER_ORDER, evaluate_catalog, parse_mag_bins
from lsst.meas.contextnet.evaluation.task import (
    ContextNetEvaluationConfig,
    ContextNetEvaluationConnections,
    ContextNetEvaluationTask,
)
from matplotlib.figure import Figure

MAG_BINS = [17.0, 19.0, 21.0, 23.0, 25.0, 27.0]


def make_exposure(rng, visit, detector, n_detected=150, n_undetected=9):
    """Synthetic truth, classification and src tables of one exposure.

    ContextNet is informative (galaxies score high); extendedness is right 80% of the time.
    """
    n = n_detected + n_undetected
    is_galaxy = rng.random(n) < 0.55
    mag = np.where(is_galaxy, rng.uniform(20.0, 26.0, n), rng.uniform(17.0, 24.0, n))
    source_id = np.full(n, -1, dtype=np.int64)
    source_id[:n_detected] = visit * 1_000_000 + detector * 10_000 + np.arange(n_detected)
    hlr = np.where(is_galaxy, rng.uniform(0.1, 1.5, n), 0.0)
    truth = Table(
        {
            "sourceId": source_id,
            "is_galaxy": is_galaxy,
            "mag": mag,
            "hlr_arcsec": hlr,
            "ellipticity": np.where(is_galaxy, rng.uniform(0.0, 0.6, n), 0.0),
            "rotation_deg": np.where(is_galaxy, rng.uniform(-90.0, 90.0, n), 0.0),
            "x_true": rng.uniform(0, 512, n),
            "y_true": rng.uniform(0, 512, n),
            "psf_fwhm": np.full(n, 0.8),
            "flux": 10 ** (-0.4 * (mag - 31.0)),
        }
    )
    det = slice(0, n_detected)
    prob = np.clip(np.where(is_galaxy[det], 0.75, 0.25) + rng.normal(0.0, 0.2, n_detected), 0.0, 1.0)
    right = rng.random(n_detected) < 0.8
    extendedness = np.where(right, is_galaxy[det], ~is_galaxy[det]).astype(np.float64)
    size_extendedness = np.clip(np.where(is_galaxy[det], 0.6, 0.3) + rng.normal(0, 0.2, n_detected), 0.0, 1.0)
    order = rng.permutation(n_detected)  # classification rows are in source-table order, not truth order
    classification = Table(
        {
            "sourceId": source_id[det][order],
            "x": truth["x_true"][det][order],
            "y": truth["y_true"][det][order],
            "classification_galaxyProb": prob[order].astype(np.float32),
            "classification_galaxyProbErr": np.full(n_detected, 0.05, dtype=np.float32),
            "classification_nSets": np.full(n_detected, 4, dtype=np.int32),
            "classification_flag": np.zeros(n_detected, dtype=bool),
            "extendedness": extendedness[order],
            "sizeExtendedness": size_extendedness[order],
        }
    )
    src = Table(
        {
            "sourceId": source_id[det],
            "psfFlux": truth["flux"][det],
            "psfFluxErr": np.sqrt(truth["flux"][det]) + 1.0,
            "gaussianFlux": truth["flux"][det] * np.where(is_galaxy[det], 1.2, 1.0),
            "extendedness": extendedness,
            "extendedness_flag": np.zeros(n_detected, dtype=bool),
            "sizeExtendedness": size_extendedness,
            "sizeExtendedness_flag": np.zeros(n_detected, dtype=bool),
        }
    )
    return truth, classification, src


# ---------------------------------------------------------------------------------------------
# joining


def hand_tables():
    classification = Table(
        {
            "sourceId": np.array([10, 11, 12, 13], dtype=np.int64),
            "x": [1.0, 2.0, 3.0, 4.0],
            "classification_galaxyProb": np.array([0.9, 0.2, 0.7, 0.5], dtype=np.float32),
        }
    )
    truth = Table(
        {
            "sourceId": np.array([11, 10, -1, 12, 12, 14, -1], dtype=np.int64),
            "is_galaxy": [False, True, True, True, False, False, True],
            "mag": [20.0, 21.0, 26.0, 22.0, 20.5, 23.0, 27.0],
            "x": [2.1, 1.1, 9.0, 3.1, 3.2, 5.0, 8.0],
        }
    )
    return classification, truth


def test_join_hand_made_tables():
    classification, truth = hand_tables()
    result = join_classification_truth(classification, truth, visit=7, detector=3)
    catalog = result.catalog
    # 13 has no truth (spurious); 12 has two truth rows (a blend): the brighter (mag 20.5, a star) wins
    assert catalog["sourceId"].tolist() == [10, 11, 12]
    assert catalog["is_galaxy"].tolist() == [True, False, False]
    assert catalog["mag"].tolist() == [21.0, 20.0, 20.5]
    assert catalog["x"].tolist() == [1.0, 2.0, 3.0]  # the classification's column is kept
    assert catalog["truth_x"].tolist() == [1.1, 2.1, 3.2]  # the truth's colliding column is prefixed
    assert catalog["visit"].tolist() == [7, 7, 7]
    assert catalog["detector"].tolist() == [3, 3, 3]
    assert result.counts == {
        "n_exposures": 1,
        "n_classified": 4,
        "n_truth": 7,
        "n_truth_undetected": 2,
        "n_truth_detected": 5,
        "n_matched": 3,
        "n_unmatched_detections": 1,
        "n_truth_not_classified": 1,  # sourceId 14
        "n_truth_duplicate_matches": 1,
    }


def test_join_null_truth_source_id_is_undetected():
    classification, truth = hand_tables()
    truth["sourceId"] = MaskedColumn(truth["sourceId"], mask=truth["sourceId"] < 0)
    result = join_classification_truth(classification, truth)
    assert result.counts["n_truth_undetected"] == 2
    assert result.catalog["sourceId"].tolist() == [10, 11, 12]
    assert "visit" not in result.catalog.colnames


def test_join_with_src_adds_missing_columns():
    classification, truth = hand_tables()
    src = Table(
        {
            "sourceId": np.array([13, 12, 11, 10], dtype=np.int64),
            "x": [0.0, 0.0, 0.0, 0.0],
            "extendedness_flag": [False, True, False, True],
        }
    )
    catalog = join_classification_truth(classification, truth, src).catalog
    assert catalog["extendedness_flag"].tolist() == [True, False, True]
    assert catalog["x"].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="src lacks 1"):
        join_classification_truth(classification, truth, src[[0, 2, 3]])


def test_join_rejects_bad_tables():
    classification, truth = hand_tables()
    with pytest.raises(ValueError, match="repeats sourceId"):
        join_classification_truth(classification[[0, 0, 1]], truth)
    with pytest.raises(ValueError, match="no 'sourceId'"):
        join_classification_truth(classification, Table({"id": [1]}))


def test_join_without_any_truth_match():
    classification, truth = hand_tables()
    truth["sourceId"] = -1
    result = join_classification_truth(classification, truth)
    assert len(result.catalog) == 0
    assert result.counts["n_unmatched_detections"] == 4
    assert "is_galaxy" in result.catalog.colnames


def test_concatenate_joins_sums_counts():
    rng = np.random.default_rng(0)
    joins = []
    for visit in (1, 2):
        truth, classification, _ = make_exposure(rng, visit, 0, n_detected=30, n_undetected=4)
        joins.append(join_classification_truth(classification, truth, visit=visit, detector=0))
    joined = concatenate_joins(joins)
    assert len(joined.catalog) == 60
    assert joined.counts["n_exposures"] == 2
    assert joined.counts["n_truth_undetected"] == 8
    assert sorted(set(joined.catalog["visit"])) == [1, 2]


# ---------------------------------------------------------------------------------------------
# evaluation


@pytest.fixture
def joined():
    rng = np.random.default_rng(42)
    joins = []
    for visit in (1, 2, 3):
        for detector in (0, 1):
            truth, classification, src = make_exposure(rng, visit, detector)
            joins.append(
                join_classification_truth(classification, truth, src, visit=visit, detector=detector)
            )
    return concatenate_joins(joins)


def test_evaluate_catalog(joined):
    result = evaluate_catalog(joined.catalog, counts=joined.counts, mag_bins=MAG_BINS)
    assert result.classifiers == list(CLASSIFIER_ORDER)
    summary = result.summary
    assert summary["classifier"].tolist() == list(CLASSIFIER_ORDER)
    assert len(result.by_magnitude) == len(CLASSIFIER_ORDER) * (len(MAG_BINS) - 1)
    catalog = joined.catalog
    reference = compute_metrics(
        np.asarray(catalog["is_galaxy"]), np.asarray(catalog["classification_galaxyProb"])
    )
    row = summary[summary["classifier"] == "ContextNet"][0]
    assert row["accuracy"] == pytest.approx(reference.accuracy)
    assert row["auc"] == pytest.approx(reference.auc)
    assert row["n"] == 6 * 150
    ext = summary[summary["classifier"] == "extendedness"][0]
    assert 0.7 < ext["accuracy"] < 0.9
    # the informative synthetic ContextNet beats the baselines and the trivial predictors
    assert row["accuracy"] > max(summary["accuracy"][1:])
    assert result.counts["n_evaluated"] == 900
    assert result.counts["n_truth_undetected"] == 6 * 9
    assert {"score_majority_class", "score_magnitude_only"} <= set(result.catalog.colnames)
    assert np.all(np.isfinite(result.catalog["score_magnitude_only"]))
    assert set(result.reliability) == set(CLASSIFIER_ORDER)
    assert result.settings["trivial"]["group_column"] == "visit"
    # The accuracy's standard error, clustered by the 6 visits: the clustered formula on the rows.
    from lsst.meas.contextnet.evaluation.clustered import clustered_proportion

    prob = np.asarray(result.catalog["classification_galaxyProb"], dtype=float)
    correct = (prob >= 0.5) == np.asarray(result.catalog["is_galaxy"], dtype=bool)
    _, expected = clustered_proportion(correct, np.isfinite(prob), np.asarray(result.catalog["visit"]))
    assert row["accuracy_se"] == pytest.approx(expected) and expected > 0
    assert np.all(np.isfinite(summary["accuracy_se"]))
    assert "acc.se" in result.format_summary()
    without = evaluate_catalog(result.catalog[[n for n in result.catalog.colnames if n != "visit"]],
                               mag_bins=MAG_BINS, do_trivial=False)  # fmt: skip
    assert np.all(np.isnan(without.metrics["accuracy_se"]))

    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["counts"]["n_truth_undetected"] == 54
    assert [entry["classifier"] for entry in data["summary"]] == list(CLASSIFIER_ORDER)
    assert len(data["by_magnitude"]) == len(result.by_magnitude)

    text = result.format_summary()
    assert all(name in text for name in CLASSIFIER_ORDER)
    assert "54 undetected" in result.format_counts()
    per_mag = result.format_by_magnitude()
    assert "17.00-19.00" in per_mag and "magnitude_only" in per_mag


def test_evaluate_catalog_is_seeded(joined):
    first = evaluate_catalog(joined.catalog, mag_bins=MAG_BINS, seed=3)
    second = evaluate_catalog(joined.catalog, mag_bins=MAG_BINS, seed=3)
    np.testing.assert_array_equal(
        first.catalog["score_magnitude_only"], second.catalog["score_magnitude_only"]
    )


def test_evaluate_flags_and_missing_baselines(joined):
    catalog = joined.catalog.copy()
    catalog["classification_flag"][:10] = True
    catalog["classification_galaxyProb"][10:15] = np.nan
    catalog["extendedness_flag"][:20] = True
    catalog.remove_column("sizeExtendedness")
    kept = evaluate_catalog(catalog, mag_bins=MAG_BINS, do_trivial=False)
    assert kept.classifiers == ["ContextNet", "extendedness"]
    assert kept.settings["baselines_missing"] == ["sizeExtendedness"]
    overall = kept.summary
    assert overall["n_missing"].tolist() == [5, 20]
    assert kept.counts["n_flagged"] == 10
    excluded = evaluate_catalog(catalog, mag_bins=MAG_BINS, do_trivial=False, exclude_flagged=True)
    assert excluded.summary["n_missing"][0] == 15


def test_evaluate_counts_the_sources_outside_the_training_conditions(joined):
    from lsst.meas.contextnet.tools.robustness import _visit_rows

    catalog = joined.catalog.copy()
    assert "n_outside_training" not in evaluate_catalog(catalog, mag_bins=MAG_BINS, do_trivial=False).counts
    visit = np.asarray(catalog["visit"])
    catalog["classification_flag_outsideTraining"] = visit == 2
    result = evaluate_catalog(catalog, mag_bins=MAG_BINS, do_trivial=False)
    assert result.counts["n_outside_training"] == np.count_nonzero(visit == 2) > 0
    assert (
        f"outside the model's training conditions: {np.count_nonzero(visit == 2)}" in result.format_counts()
    )
    # The per-visit rows of the robustness table say which visits the model flagged.
    keys = ("band", "fwhm", "psf_family", "psf_model_size_error", "star_fraction", "density_scale")
    rows = _visit_rows(result, "randomized", "new", lambda v: dict.fromkeys(keys, v))
    assert rows["visit"].tolist() == [1, 2, 3]
    assert rows["outside_training"].tolist() == [False, True, False]


def test_evaluate_requires_columns(joined):
    with pytest.raises(ValueError, match="'mag'"):
        evaluate_catalog(joined.catalog, mag_column="mag_r")


def test_parse_mag_bins():
    assert parse_mag_bins(["18", "19.5", "21"]) == [18.0, 19.5, 21.0]
    assert parse_mag_bins(["16:18:0.5"]) == [16.0, 16.5, 17.0, 17.5, 18.0]
    with pytest.raises(ValueError, match="increasing"):
        parse_mag_bins(["19", "18"])
    with pytest.raises(ValueError, match="START:STOP:STEP"):
        parse_mag_bins(["16:18"])
    with pytest.raises(ValueError, match="numbers"):
        parse_mag_bins(["a", "b"])


# ---------------------------------------------------------------------------------------------
# task


def test_config_validation():
    config = ContextNetEvaluationConfig()
    config.validate()
    config.magBins = [20.0, 19.0]
    with pytest.raises(Exception, match="increasing"):
        config.validate()


@pytest.mark.parametrize("scope", ["instrument", "visit"])
@pytest.mark.parametrize("do_plots", [True, False])
def test_connections(scope, do_plots):
    from lsst.pipe.base.testUtils import lintConnections

    config = ContextNetEvaluationConfig()
    config.scope = scope
    config.doPlots = do_plots
    connections = ContextNetEvaluationConnections(config=config)
    lintConnections(connections)
    expected = {"instrument"} if scope == "instrument" else {"instrument", "visit"}
    assert set(connections.dimensions) == expected
    assert set(connections.inputs) == {"classification", "truth", "catalog"}
    config.doPeer = False
    assert set(ContextNetEvaluationConnections(config=config).inputs) == {"classification", "truth"}
    plots = {"accuracyPlot", "parameterPlot", "sizePlot", "reliabilityPlot"}
    assert set(connections.outputs) == {"metrics", "summary"} | (plots if do_plots else set())
    for name in connections.outputs:
        assert set(getattr(connections, name).dimensions) == expected
        assert getattr(connections, name).name.endswith("_visit") == (scope == "visit")
    if do_plots:
        assert connections.accuracyPlot.storageClass == "Plot"


def test_task_run_outputs():
    from lsst.pipe.base.testUtils import assertValidOutput

    rng = np.random.default_rng(1)
    exposures = [make_exposure(rng, visit, 0, n_detected=60, n_undetected=3) for visit in (1, 2)]
    config = ContextNetEvaluationConfig()
    config.magBins = MAG_BINS
    config.maxPlotPoints = 50
    task = ContextNetEvaluationTask(config=config)
    result = task.run(
        classification=[e[1] for e in exposures],
        truth=[e[0] for e in exposures],
        visits=[1, 2],
        detectors=[0, 0],
        band="r",
    )
    assertValidOutput(task, result)
    assert len(result.metrics) == len(CLASSIFIER_ORDER) * len(MAG_BINS)
    assert result.summary["counts"]["n_truth_undetected"] == 6
    for name in ("accuracyPlot", "parameterPlot", "sizePlot", "reliabilityPlot"):
        assert isinstance(getattr(result, name), Figure)
    assert "r-band" in result.accuracyPlot.axes[0].get_xlabel()
    with pytest.raises(ValueError, match="one entry per exposure"):
        task.run(classification=[exposures[0][1]], truth=[])


def test_task_run_quantum(tmp_path):
    from lsst.daf.butler.tests import addDataIdValue, addDatasetType, makeTestRepo
    from lsst.pipe.base.testUtils import makeQuantum, runTestQuantum

    butler = makeTestRepo(str(tmp_path))
    addDataIdValue(butler, "instrument", "SimCam")
    addDataIdValue(butler, "physical_filter", "SimCam-r", band="r")
    for detector in (0, 1):
        addDataIdValue(butler, "detector", detector)
    for visit in (1, 2):
        addDataIdValue(butler, "visit", visit, physical_filter="SimCam-r")
    for name in ("contextnet_classification", "truth", "src"):
        addDatasetType(butler, name, {"instrument", "visit", "detector"}, "ArrowAstropy")
    addDatasetType(butler, "contextnet_metrics", {"instrument"}, "ArrowAstropy")
    addDatasetType(butler, "contextnet_metrics_summary", {"instrument"}, "StructuredDataDict")
    butler.collections.register("sim")
    rng = np.random.default_rng(2)
    data_ids = []
    for visit in (1, 2):
        for detector in (0, 1):
            truth, classification, src = make_exposure(rng, visit, detector, n_detected=40, n_undetected=2)
            data_id = {"instrument": "SimCam", "visit": visit, "detector": detector}
            butler.put(truth, "truth", data_id, run="sim")
            butler.put(src, "src", data_id, run="sim")
            if (visit, detector) != (2, 1):  # one exposure without a classification: skipped
                butler.put(classification, "contextnet_classification", data_id, run="sim")
            data_ids.append(data_id)
    butler = type(butler).from_config(butler=butler, collections=["sim"], run="sim")

    config = ContextNetEvaluationConfig()
    config.doPlots = False
    config.magBins = MAG_BINS
    task = ContextNetEvaluationTask(config=config)
    quantum = makeQuantum(
        task,
        butler,
        {"instrument": "SimCam"},
        {
            "classification": data_ids[:3],
            "truth": data_ids,
            "catalog": data_ids,
            "metrics": {"instrument": "SimCam"},
            "summary": {"instrument": "SimCam"},
        },
    )
    runTestQuantum(task, butler, quantum, mockRun=False)
    metrics = butler.get("contextnet_metrics", instrument="SimCam")
    summary = butler.get("contextnet_metrics_summary", instrument="SimCam")
    assert summary["counts"]["n_exposures"] == 3
    assert summary["counts"]["n_evaluated"] == 120
    overall = metrics[metrics["bin"] == -1]
    assert overall["classifier"].tolist() == [*CLASSIFIER_ORDER[:3], "catalog_gbdt", *CLASSIFIER_ORDER[3:]]
    assert overall["n"][0] == 120 and overall["n"][3] == 120


# ---------------------------------------------------------------------------------------------
# plotting


def _check_labelled(ax):
    assert ax.get_xlabel(), "x axis without label"
    assert ax.get_ylabel(), "y axis without label"


def test_plots_have_labelled_axes(joined):
    result = evaluate_catalog(joined.catalog, mag_bins=MAG_BINS)
    catalog = result.catalog

    fig5 = plot_magnitude_performance(
        catalog["mag"], catalog["is_galaxy"], result.metrics, classifiers=["ContextNet", "extendedness"]
    )
    assert isinstance(fig5, Figure)
    left, right = fig5.axes
    _check_labelled(left)
    _check_labelled(right)
    assert "mag" in left.get_xlabel()
    assert {"all", "galaxies", "stars"} <= {t.get_text() for t in left.get_legend().get_texts()}
    assert {"ContextNet", "DM extendedness"} <= {t.get_text() for t in right.get_legend().get_texts()}
    # the number of scored objects of every bin is written above it
    counts = result.by_magnitude[result.by_magnitude["classifier"] == "ContextNet"]["n"].tolist()
    assert [int(t.get_text()) for t in right.texts] == counts

    fig6 = plot_probability_vs_truth(catalog, max_points=100, seed=0)
    panels = fig6.axes
    assert len(panels) == 4
    assert all(ax.get_xlabel() for ax in panels)
    assert "arcsec" in panels[0].get_xlabel() and "deg" in panels[3].get_xlabel()
    assert panels[0].get_ylabel()

    fig7 = plot_probability_vs_size(catalog, max_points=200)
    top, bottom = fig7.axes[:2]
    _check_labelled(top)
    _check_labelled(bottom)
    assert bottom.get_xlim()[1] == pytest.approx(0.4)  # half the median PSF FWHM of 0.8 arcsec

    reliability = plot_reliability_diagram(result.reliability)
    top, bottom = reliability.axes
    assert top.get_ylabel() and bottom.get_xlabel() and bottom.get_ylabel()


def test_plot_rejects_unknown_metric(joined):
    result = evaluate_catalog(joined.catalog, mag_bins=MAG_BINS, do_trivial=False)
    with pytest.raises(ValueError, match="metric"):
        plot_magnitude_performance(
            joined.catalog["mag"], joined.catalog["is_galaxy"], result.metrics, metric="f1"
        )
    with pytest.raises(ValueError, match="classifiers"):
        plot_magnitude_performance(
            joined.catalog["mag"], joined.catalog["is_galaxy"], result.metrics, classifiers=["nope"]
        )


# ---------------------------------------------------------------------------------------------
# command line against a real (file datastore) Butler repository


@pytest.fixture
def repo(tmp_path):
    from lsst.daf.butler import Butler, DatasetType
    from lsst.daf.butler.tests import addDataIdValue

    root = tmp_path / "repo"
    Butler.makeRepo(str(root))
    butler = Butler.from_config(str(root), writeable=True)
    addDataIdValue(butler, "instrument", "SimCam")
    addDataIdValue(butler, "physical_filter", "SimCam-r", band="r")
    addDataIdValue(butler, "detector", 0)
    for visit in (1, 2):
        addDataIdValue(butler, "visit", visit, physical_filter="SimCam-r")
    dimensions = {"instrument", "visit", "detector"}
    for name in ("truth", "src", "contextnet_classification"):
        butler.registry.registerDatasetType(
            DatasetType(name, dimensions, "ArrowAstropy", universe=butler.dimensions)
        )
    for run in ("sim", "classify"):
        butler.collections.register(run)
    rng = np.random.default_rng(11)
    for visit in (1, 2):
        truth, classification, src = make_exposure(rng, visit, 0, n_detected=80, n_undetected=5)
        data_id = {"instrument": "SimCam", "visit": visit, "detector": 0}
        butler.put(truth, "truth", data_id, run="sim")
        butler.put(src, "src", data_id, run="sim")
        butler.put(classification, "contextnet_classification", data_id, run="classify")
    return root


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="contextnet")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_subcommand(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_evaluate(repo, tmp_path, capsys):
    output = tmp_path / "out"
    status = run_cli(
        [
            "evaluate",
            "--repo",
            str(repo),
            "--collections",
            "classify",
            "sim",
            "--output",
            str(output),
            "--mag-bins",
            "17:27:2",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "10 undetected" in printed
    assert all(name in printed for name in (*CLASSIFIER_ORDER, "catalog_gbdt"))
    assert "accuracy by true magnitude" in printed

    table = Table.read(output / "metrics.csv", format="ascii.csv")
    # Every classifier (the shipped catalog peer included) overall and in each bin.
    assert len(table) == (len(CLASSIFIER_ORDER) + 1) * len(MAG_BINS)
    assert {"classifier", "n", "n_galaxy", "n_star", "accuracy", "auc", "ece"} <= set(table.colnames)
    data = json.loads((output / "metrics.json").read_text())
    assert data["counts"]["n_exposures"] == 2
    assert data["counts"]["n_truth_undetected"] == 10
    assert data["counts"]["n_evaluated"] == 160
    assert data["settings"]["bands"] == ["r"]
    assert data["settings"]["mag_bins"] == MAG_BINS
    for name in ("accuracy_vs_magnitude", "galaxyProb_vs_truth", "galaxyProb_vs_size", "reliability"):
        path = output / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (output / "summary.txt").read_text().startswith("exposures: 2")


def test_cli_where_and_errors(repo, tmp_path):
    output = tmp_path / "one"
    args = ["evaluate", "--repo", str(repo), "--collections", "classify", "sim", "--output", str(output)]
    assert run_cli([*args, "--where", "visit = 2", "--no-plots"]) == 0
    data = json.loads((output / "metrics.json").read_text())
    assert data["counts"]["n_exposures"] == 1
    assert not list(output.glob("*.png"))
    with pytest.raises(ValueError, match="no 'contextnet_classification' datasets"):
        run_cli([*args, "--where", "visit = 5"])
    with pytest.raises(ValueError, match="has a 'truth'"):
        run_cli(["evaluate", "--repo", str(repo), "--collections", "classify", "--output", str(output)])
    with pytest.raises(ValueError, match="threshold"):
        run_cli([*args, "--threshold", "1.5"])
    assert math.isfinite(data["summary"][0]["accuracy"])


def test_cli_train_peer(repo, tmp_path, capsys):
    from lsst.meas.contextnet.cli.main import main
    from lsst.meas.contextnet.evaluation.peer import CatalogPeer

    output = tmp_path / "peer.pkl"
    assert main(["train-peer", "--repo", str(repo), "--collections", "sim", "--output", str(output)]) == 0
    assert "160 sources of 2 exposures" in capsys.readouterr().out
    card = CatalogPeer.load(output).card
    # One of the two visits (80 sources each) is held out for the early stopping.
    assert card["n_visits_held_out"] == 1 and card["n_held_out"] == 80 and card["collections"] == ["sim"]


def test_robustness_star_recall_of_isolated_and_blended_stars(joined):
    from astropy.table import vstack
    from lsst.meas.contextnet.tools.robustness import (
        _margins,
        _visit_rows,
        format_blend_table,
        format_margin_table,
        format_visit_table,
    )

    catalog = joined.catalog.copy()
    rng = np.random.default_rng(5)
    visit = np.asarray(catalog["visit"])
    stars = ~np.asarray(catalog["is_galaxy"]) & (np.asarray(catalog["mag"]) < 22.0)
    # Visit 3's truth could not tell which objects are blended: its stars are in neither group.
    blended = rng.random(len(catalog)) < 0.2
    catalog["blended"] = MaskedColumn(blended, mask=visit == 3)
    known = visit != 3
    # Some bright stars the model did not score, others extendedness did not.
    unscored = np.flatnonzero(stars)[rng.choice(stars.sum(), 8, replace=False)]
    catalog["classification_galaxyProb"][unscored[:4]] = np.nan
    catalog["extendedness"][unscored[4:]] = np.nan
    prob = np.asarray(catalog["classification_galaxyProb"])
    scored = np.isfinite(prob)
    called_star = prob < 0.5
    extendedness = np.asarray(catalog["extendedness"])
    ext_scored, ext_star = np.isfinite(extendedness), extendedness < 0.5
    catalog["band"] = "r"
    result = evaluate_catalog(catalog, mag_bins=MAG_BINS, do_trivial=False)
    margins = _margins(result, "star-poor-r", "tiny")
    row = margins[margins["bin"] == -1][0]
    assert set(margins["bands"]) == {"r"}
    isolated, blend = stars & known & ~blended, stars & known & blended
    # Counts: the matched stars; each recall: over the stars its classifier scored.
    assert row["n_bright_star"] == stars.sum()
    assert row["n_bright_star_blended"] == blend.sum() > 0
    assert row["star_recall_bright"] == pytest.approx(called_star[stars & scored].mean())
    assert row["star_recall_bright_isolated"] == pytest.approx(called_star[isolated & scored].mean())
    assert row["star_recall_bright_blended"] == pytest.approx(called_star[blend & scored].mean())
    expected = ext_star[blend & ext_scored].mean()
    assert row["star_recall_bright_extendedness_blended"] == pytest.approx(expected)
    assert row["star_recall_bright_isolated_se"] > 0
    text = format_blend_table(margins)
    assert "isolated and blended stars" in text and "2 PSF FWHM" in text
    assert "| world | classifier | stars | blended | model isolated | model blended |" in text
    assert f"| star-poor-r | tiny | {stars.sum()} | {blend.sum()} | " in text
    assert f"{row['star_recall_bright_blended']:.3f} ± {row['star_recall_bright_blended_se']:.3f}" in text
    assert "star-poor-r" in format_margin_table(margins)
    # Per visit: the blended stars and the recall of the isolated ones.
    drawn = {"band": "r", "fwhm": 1.8, "psf_family": "moffat", "psf_model_size_error": 0.01}
    drawn |= {"star_fraction": 0.1, "density_scale": 1.0}
    visits = _visit_rows(result, "star-poor-r", "tiny", lambda visit: drawn)
    for row in visits:
        here = visit == row["visit"]
        assert row["n_bright_star"] == (here & stars).sum()
        assert row["n_bright_star_blended"] == (here & blend).sum()
        if row["visit"] == 3:
            assert np.isnan(row["star_recall_bright_isolated"])
        else:
            expected = called_star[here & isolated & scored].mean()
            assert row["star_recall_bright_isolated"] == pytest.approx(expected)
            expected = ext_star[here & isolated & ext_scored].mean()
            assert row["star_recall_bright_extendedness_isolated"] == pytest.approx(expected)
    table = format_visit_table(visits, min_stars=1, recall_below=1.01)
    assert "| stars <22 | blended | tiny | tiny isolated | extendedness | GBDT |" in table
    assert table.count("\n| star-poor-r | 3 |") == 1
    # A world without the truth's blend column: nothing to split, and no row in the section.
    plain = _margins(evaluate_catalog(joined.catalog, mag_bins=MAG_BINS, do_trivial=False), "w", "tiny")
    assert "star_recall_bright_isolated" not in plain.colnames and format_blend_table(plain) == ""
    both = format_blend_table(vstack([margins, plain]))
    assert "| star-poor-r | tiny |" in both and "| w | tiny |" not in both


def test_robustness_targets_count_rows_and_bins():
    from astropy.table import vstack
    from lsst.meas.contextnet.tools.robustness import format_target_table, missed_targets, target_table

    def margin_rows(world, bands, overall, faint):
        # bin -1 overall, bin 0 brighter than 22 (never a faint bin), then faint bins (n, margins).
        rows = [(world, "m", bands, -1, -np.inf, np.inf, 5000, *overall, 0.995)]
        rows.append((world, "m", bands, 0, 14.0, 22.0, 3000, 0.0, 0.0, 0.995))
        for k, (n, ext, gbdt) in enumerate(faint, start=1):
            rows.append((world, "m", bands, k, 21.0 + k, 22.0 + k, n, ext, gbdt, 0.995))
        return rows

    names = ("world", "classifier", "bands", "bin", "mag_lo", "mag_hi", "n")
    names += ("margin_extendedness", "margin_catalog_gbdt", "star_recall_bright")
    rows = margin_rows("a", "g,r", (0.05, 0.02), [(400, 0.03, 0.011), (199, -0.2, -0.2), (300, 0.02, 0.009)])
    # A bin of exactly 200 objects counts; one whose margin cannot be measured is missed, not the weakest.
    rows += margin_rows("a-r", "r", (0.05, np.nan), [(200, 0.03, 0.02), (500, np.nan, 0.5)])
    with pytest.raises(ValueError, match="no 'bands' column"):
        target_table(Table(), Table(rows=[("a", "m", -1)], names=("world", "classifier", "bin")))
    # The star-recall target counts on the rows whose visits are all r-band, whatever their name.
    rows += margin_rows("narrow", "r", (0.05, 0.05), [])
    margins = Table(rows=rows, names=names)
    margins["star_recall_bright"][margins["world"] == "a-r"] = 0.98
    metrics = Table(
        rows=[("a", "m", -1, 0.012), ("a-r", "m", -1, 0.025), ("narrow", "m", -1, 0.01)],
        names=("world", "classifier", "bin", "ece"),
    )
    metrics.add_row(("a", "extendedness", -1, 0.1))
    # Only the rows of r-band visits count for star recall: without any, the count is 0 of 0.
    alone = format_target_table(target_table(metrics, margins[margins["world"] == "a"]))
    assert "star recall on 0 of 0 r-band rows" in alone
    # A second model: its own rows and its own ECE.
    other = margins.copy()
    other["classifier"] = "n"
    other["margin_catalog_gbdt"] += 0.01
    metrics.add_row(("a", "n", -1, 0.03))
    metrics.add_row(("a-r", "n", -1, 0.01))
    metrics.add_row(("narrow", "n", -1, 0.01))
    targets = target_table(metrics, vstack([margins, other]))
    a, a_r, band_r = targets[targets["classifier"] == "m"]
    assert band_r["r_band"] and band_r["star_recall_met"] and band_r["n_faint_bins"] == 0
    assert band_r["weakest_bin"] == "" and np.isnan(band_r["weakest_margin"])
    assert (a_r["n_faint_bins"], a_r["n_faint_bins_met"], a_r["weakest_bin"]) == (2, 1, "22-23")
    a_n = targets[(targets["classifier"] == "n") & (targets["world"] == "a")][0]
    assert a_n["n_faint_bins_met"] == 2 and not a_n["ece_met"]
    assert missed_targets(targets) == [
        "a m: faint bins (1 of 2)",
        "a n: ECE",
        "a-r m: overall margin, faint bins (1 of 2), star recall, ECE",
        "a-r n: overall margin, faint bins (1 of 2), star recall",
    ]
    targets = targets[targets["classifier"] == "m"]
    assert a["margin"] == pytest.approx(0.02) and a["margin_met"]
    # The 199-object bin is not counted; the 0.009 margin over the GBDT misses.
    assert (a["n_faint_bins"], a["n_faint_bins_met"]) == (2, 1)
    assert a["weakest_bin"] == "24-25" and a["weakest_margin"] == pytest.approx(0.009)
    # Star recall counts on r-band rows only; a margin that cannot be measured is not met.
    assert np.ma.is_masked(a["star_recall_met"]) and not a_r["star_recall_met"]
    assert np.isnan(a_r["margin"]) and not a_r["margin_met"]
    assert a["ece_met"] and not a_r["ece_met"]
    text = format_target_table(targets)
    assert "- m: overall margin met on 2 of 3 rows; faint bins 2 of 4; star recall on 1 of 2" in text
    assert "| a | m | 5000 | +0.0200 | 1 of 2 (missed) | 24-25: +0.0090 | 0.9950 | 0.0120 |" in text
    assert "0.9800 (missed) | 0.0250 (missed) |" in text
    # In the JSON, the unmeasured margin and the recall target of a row in other bands are null.
    from lsst.meas.contextnet.serialization import table_rows

    plain_a, plain_a_r, _ = json.loads(json.dumps(table_rows(targets), allow_nan=False))
    assert plain_a["star_recall_met"] is None and plain_a["n_faint_bins_met"] == 1
    assert plain_a_r["margin"] is None and plain_a_r["star_recall_met"] is False


def test_cli_robustness_require_targets(tmp_path, monkeypatch, capsys):
    import lsst.meas.contextnet.tools.robustness as robustness
    from lsst.meas.contextnet.cli.main import main

    # Labels that look like numbers are labels.
    ece = {"007": 0.01, "1e3": 0.05}

    def fake_run(repo, output, **kwargs):
        # Stands in for the simulation and scoring: the metrics and the targets it returns.
        label = kwargs["models"][0][0]
        metrics = Table(
            rows=[("w-r", label, -1, -np.inf, np.inf, 900, 0.95, ece[label])],
            names=("world", "classifier", "bin", "mag_lo", "mag_hi", "n", "accuracy", "ece"),
        )
        names = ("world", "classifier", "bands", "bin", "n", "margin_extendedness", "margin_catalog_gbdt")
        names += ("star_recall_bright",)
        margins = Table(rows=[("w-r", label, "r", -1, 900, 0.05, 0.03, 0.995)], names=names)
        return metrics, robustness.target_table(metrics, margins)

    monkeypatch.setattr(robustness, "run_robustness", fake_run)
    monkeypatch.setattr(robustness, "format_table", lambda table: "")
    for label, status in (("007", 0), ("1e3", 0)):
        out = tmp_path / f"plain-{label}"
        out.mkdir()
        args = ["robustness", "--repo", "r", "--output", str(out), "--model", f"{label}=shipped"]
        assert main(args) == status
    assert "ECE on 0 of 1 rows" in capsys.readouterr().out
    for label, status in (("007", 0), ("1e3", 1)):
        out = tmp_path / f"required-{label}"
        out.mkdir()
        args = ["robustness", "--repo", "r", "--output", str(out), "--model", f"{label}=shipped"]
        assert main([*args, "--require-targets"]) == status
    assert "targets missed on 1 of 1 rows: w-r 1e3: ECE" in capsys.readouterr().out


def test_robustness_refuses_overlapping_visits(tmp_path):
    from lsst.meas.contextnet.tools.robustness import run_robustness

    # A world's visits start 10000 apart and its r-band visits 5000 after its first.
    with pytest.raises(ValueError, match="sim/randomized .* would overlap those of sim/randomized-r"):
        run_robustness(str(tmp_path / "repo"), tmp_path / "out", worlds=["randomized"], visits=5001)
    with pytest.raises(ValueError, match="sim/peer-train .* would overlap those of sim/band-u"):
        run_robustness(str(tmp_path / "repo"), tmp_path / "out", worlds=["band-u"], peer_visits=10001)
    with pytest.raises(ValueError, match="not both"):
        run_robustness(str(tmp_path / "repo"), tmp_path / "out", peer_visits=2, peer_path="peer.pkl")
    with pytest.raises(ValueError, match="peer_visits must be 0"):
        run_robustness(str(tmp_path / "repo"), tmp_path / "out", peer_visits=-1)
    with pytest.raises(FileNotFoundError):
        run_robustness(str(tmp_path / "repo"), tmp_path / "out", peer_path=tmp_path / "missing.pkl")
    assert not (tmp_path / "repo").exists() and not (tmp_path / "out").exists()


def test_robustness_splits_have_disjoint_seeds(tmp_path):
    from lsst.meas.contextnet.sim.world import world_names
    from lsst.meas.contextnet.tools.robustness import SPLIT_SEED_BASES, run_robustness

    # Every world's seed (and its r-band companion's) in one split is never another split's.
    n = len(world_names())
    seeds = {
        split: {base + k for base in bases for k in range(1, n + 1)}
        for split, bases in SPLIT_SEED_BASES.items()
    }
    assert sum(len(s) for s in seeds.values()) == 2 * n * len(SPLIT_SEED_BASES)
    assert not seeds["test"] & seeds["validation"]
    with pytest.raises(ValueError, match="split must be one of"):
        run_robustness(str(tmp_path / "repo"), tmp_path / "out", split="train")
    assert not (tmp_path / "repo").exists()


def test_robustness_refuses_an_incomplete_collection(tmp_path):
    from lsst.meas.contextnet.sim.exposure import SimulationConfig
    from lsst.meas.contextnet.sim.simulate import simulate_repo
    from lsst.meas.contextnet.tools.robustness import run_robustness

    # One visit of the two the run asks for, as an interrupted simulation leaves it.
    repo = str(tmp_path / "repo")
    simulate_repo(repo, "sim/star-poor", visits=1, config=SimulationConfig(size=256), seed=1, progress=False)
    with pytest.raises(RuntimeError, match="'sim/star-poor' holds 1 calexp datasets where 2 are expected"):
        run_robustness(repo, tmp_path / "out", worlds=["star-poor"], visits=2, size=256, r_visits=0)


def test_robustness_refuses_a_collection_simulated_otherwise(tmp_path):
    from lsst.daf.butler import Butler
    from lsst.meas.contextnet.sim.exposure import SimulationConfig
    from lsst.meas.contextnet.sim.simulate import simulate_repo, simulation_record
    from lsst.meas.contextnet.tools.robustness import run_robustness

    # The right name and number of visits, but seed 1: not the test split's world.
    repo = str(tmp_path / "repo")
    config = SimulationConfig(world="star-poor", size=256)
    simulate_repo(repo, "sim/star-poor", visits=1, config=config, seed=1, progress=False)
    record = simulation_record(Butler.from_config(repo), "sim/star-poor")
    assert record["seed"] == 1 and record["visits"] == 1 and record["config"]["world"] == "star-poor"
    with pytest.raises(RuntimeError, match=r"'sim/star-poor' was simulated with seed 1 \(this run: 9"):
        run_robustness(repo, tmp_path / "out", worlds=["star-poor"], visits=1, size=256, r_visits=0)


@pytest.mark.slow
def test_robustness_command_writes_one_table(tmp_path):
    from lsst.meas.contextnet.model import ContextNetConfig, build_model
    from lsst.meas.contextnet.modelio import export_model
    from lsst.meas.contextnet.tools.robustness import format_table, run_robustness

    model = tmp_path / "tiny.pt"
    config = ContextNetConfig(
        architecture="tiny-test", m=8, conv_channels=(2,), n_local=4, global_widths=(8,)
    )
    export_model(build_model(config), model, {"training": {"data": "none: random initialization for tests"}})
    settings = {
        "models": [("tiny", str(model))],
        "worlds": ["star-poor", "bad-seeing"],
        "visits": 1,
        "size": 768,
        "peer_visits": 3,
        "jobs": 1,
        "r_visits": 1,
    }
    table, _ = run_robustness(str(tmp_path / "repo"), tmp_path / "out", **settings)
    worlds = set(table["world"])
    named = {"star-poor", "bad-seeing", "star-poor-r", "bad-seeing-r"}
    assert named <= worlds
    # The other rows are the bands of those visits, pooled over the two worlds.
    assert all(name.startswith("band-") for name in worlds - named)
    # The companion collections hold r-band visits only, of seeds apart from the worlds'.
    assert set(table[table["world"] == "bad-seeing-r"]["classifier"]) >= {"tiny", "extendedness"}
    from lsst.daf.butler import Butler

    butler = Butler.from_config(str(tmp_path / "repo"))
    for world in ("star-poor-r", "bad-seeing-r"):
        refs = butler.query_datasets("calexp", collections=f"sim/{world}")
        assert refs and {ref.dataId["band"] for ref in refs} == {"r"}
    assert {"tiny", "extendedness", "sizeExtendedness", "catalog_gbdt"} <= set(table["classifier"])
    overall = table[(table["bin"] == -1) & (table["classifier"] == "catalog_gbdt")]
    assert np.all(overall["n"] > 0) and np.all(np.isfinite(overall["accuracy"]))
    for name in (
        "robustness.csv",
        "robustness_snr.csv",
        "robustness.md",
        "robustness.json",
        "robustness_margins.csv",
        "robustness_visits.csv",
        "robustness_targets.csv",
        "catalog_peer.pkl",
    ):
        assert (tmp_path / "out" / name).is_file()
    # Margins: the model's accuracy minus each baseline's, as in the main table.
    margins = Table.read(tmp_path / "out" / "robustness_margins.csv")
    assert set(margins["world"]) == worlds and set(margins["classifier"]) == {"tiny"}
    for row in margins[margins["bin"] == -1]:
        mine = table[(table["world"] == row["world"]) & (table["bin"] == -1)]
        accuracy = {c: a for c, a in zip(mine["classifier"], mine["accuracy"], strict=True)}
        assert row["accuracy"] == pytest.approx(accuracy["tiny"])
        # The peer scores every object, so the margin over it is over the objects the model scored.
        assert row["margin_catalog_gbdt_n"] == row["n"]
        n_scored = {c: n for c, n in zip(mine["classifier"], mine["n"], strict=True)}
        if n_scored["tiny"] == n_scored["catalog_gbdt"]:
            assert row["margin_catalog_gbdt"] == pytest.approx(accuracy["tiny"] - accuracy["catalog_gbdt"])
        assert row["margin_extendedness_n"] <= min(n_scored["tiny"], n_scored["extendedness"])
    # Per visit: the conditions drawn for it (bad seeing 1.3"-2.0"; the companions in r).
    visits = Table.read(tmp_path / "out" / "robustness_visits.csv")
    assert set(visits["world"]) == named
    bad = visits[visits["world"] == "bad-seeing"]
    assert np.all((bad["fwhm"] >= 1.3) & (bad["fwhm"] <= 2.0))
    assert set(visits[visits["world"] == "bad-seeing-r"]["band"]) == {"r"}
    assert np.all(visits["n"] > 0)
    assert "### bad-seeing" in format_table(table)
    # The second table: sources brighter than 22 by PSF-flux S/N, the same classifiers and worlds.
    snr = Table.read(tmp_path / "out" / "robustness_snr.csv")
    assert set(snr["world"]) == worlds and set(snr["classifier"]) == set(table["classifier"])
    assert {"snr_lo", "snr_hi", "star_recall"} <= set(snr.colnames)
    overall = snr[(snr["bin"] == -1) & (snr["classifier"] == "tiny")]
    binned = snr[(snr["bin"] >= 0) & (snr["classifier"] == "tiny")]
    for world in worlds:
        # Every bright source with a finite S/N falls in one bin.
        assert binned[binned["world"] == world]["n"].sum() <= overall[overall["world"] == world]["n"][0]
    text = (tmp_path / "out" / "robustness.md").read_text()
    assert "by PSF-flux S/N" in text and "Margins with visit-clustered standard errors" in text
    assert text.startswith("## Targets") and "- tiny: overall margin met on" in text
    targets = Table.read(tmp_path / "out" / "robustness_targets.csv")
    assert set(targets["world"]) == worlds and len(targets) == len(worlds)
    # The star-recall target counts on the rows whose visits are all r-band.
    r_rows = {str(w) for w, r in zip(targets["world"], targets["r_band"], strict=True) if str(r) == "True"}
    assert {"bad-seeing-r", "star-poor-r"} <= r_rows and not {"bad-seeing", "star-poor"} & r_rows
    assert set(margins[margins["world"] == "bad-seeing-r"]["bands"]) == {"r"}
    # The simulated truth tells which stars are blended: their recall is reported apart.
    assert "isolated and blended stars" in text
    assert np.all(margins["n_bright_star_blended"] <= margins["n_bright_star"])
    # A peer given by path is scored instead of one trained on sim/peer-train*.
    from lsst.meas.contextnet.evaluation.peer import CatalogPeer

    given = CatalogPeer.load(tmp_path / "out" / "catalog_peer.pkl")
    given.card["collections"] = ["given"]
    settings["peer_visits"] = 0
    again, _ = run_robustness(
        str(tmp_path / "repo"), tmp_path / "given", **settings, peer_path=given.save(tmp_path / "given.pkl")
    )
    assert again.meta["peer"]["collections"] == ["given"]
    peer_rows = again["classifier"] == "catalog_gbdt"
    np.testing.assert_array_equal(
        again[peer_rows]["accuracy"], table[table["classifier"] == "catalog_gbdt"]["accuracy"]
    )
    # A rerun reuses what is there, but a classification run missing a detector is an error.
    writer = Butler.from_config(str(tmp_path / "repo"), writeable=True)
    run = "contextnet/tiny/star-poor-r"
    refs = writer.query_datasets("contextnet_classification", collections=run)
    writer.pruneDatasets(refs[:1], disassociate=True, unstore=True, purge=True)
    with pytest.raises(RuntimeError, match=f"'{run}' holds 0 contextnet_classification datasets where 1"):
        run_robustness(str(tmp_path / "repo"), tmp_path / "out2", **settings)
