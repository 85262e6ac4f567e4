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

"""Tests of lsst.meas.contextnet.evaluation.metrics against hand-computed cases."""

import itertools
import math

import numpy as np
import pytest
from lsst.meas.contextnet.evaluation.metrics import (
    METRIC_NAMES,
    compare_classifiers,
    compute_metrics,
    confusion_counts,
    expected_calibration_error,
    magnitude_bin_index,
    metrics_by_magnitude,
    reliability_bins,
    roc_auc,
)
from lsst.meas.contextnet.evaluation.trivial import (
    MagnitudeOnlyClassifier,
    MajorityClassClassifier,
    cross_fit_predict,
)

# 3 galaxies then 4 stars. With threshold 0.5 (galaxy when score >= 0.5):
# galaxies 0.9, 0.6 -> galaxy (2 true galaxies), 0.2 -> star (1 false star);
# stars 0.7, 0.5 -> galaxy (2 false galaxies), 0.1, 0.4 -> star (2 true stars).
LABELS = np.array([True, True, True, False, False, False, False])
SCORES = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.4, 0.5])


def brute_force_auc(labels, scores):
    """Pairwise count: 1 for a galaxy scoring above a star, 1/2 for a tie."""
    pos = scores[labels]
    neg = scores[~labels]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return total / (pos.size * neg.size)


def test_confusion_counts_threshold_is_inclusive():
    counts = confusion_counts(LABELS, SCORES)
    assert counts == {"true_galaxy": 2, "false_galaxy": 2, "true_star": 2, "false_star": 1, "missing": 0}


def test_compute_metrics_hand_computed():
    m = compute_metrics(LABELS, SCORES)
    assert (m.n, m.n_missing, m.n_galaxy, m.n_star) == (7, 0, 3, 4)
    assert m.accuracy == pytest.approx(4 / 7)
    assert m.galaxy_precision == pytest.approx(2 / 4)
    assert m.galaxy_recall == pytest.approx(2 / 3)
    assert m.star_precision == pytest.approx(2 / 3)
    assert m.star_recall == pytest.approx(2 / 4)
    assert m.balanced_accuracy == pytest.approx((2 / 3 + 2 / 4) / 2)
    assert m.auc == pytest.approx(brute_force_auc(LABELS, SCORES))
    assert set(METRIC_NAMES) <= set(m.as_dict())


def test_threshold_changes_decisions():
    m = compute_metrics(LABELS, SCORES, threshold=0.65)
    # galaxy only for 0.9, 0.7: one true galaxy, one false galaxy
    assert m.galaxy_precision == pytest.approx(1 / 2)
    assert m.galaxy_recall == pytest.approx(1 / 3)
    assert m.star_recall == pytest.approx(3 / 4)


def test_auc_with_ties_hand_case():
    labels = np.array([True, False, True, False])
    scores = np.array([0.5, 0.5, 0.8, 0.2])
    # pairs (galaxy, star): (0.5, 0.5) tie 1/2, (0.5, 0.2) 1, (0.8, 0.5) 1, (0.8, 0.2) 1
    assert roc_auc(labels, scores) == pytest.approx(3.5 / 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_pairwise_count_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(60) < 0.4
    scores = rng.integers(0, 4, size=60).astype(float) / 3.0  # only 4 distinct values
    assert roc_auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores), abs=1e-12)


def test_auc_of_binary_classifier_is_balanced_accuracy():
    binary = (SCORES >= 0.5).astype(float)
    m = compute_metrics(LABELS, binary)
    assert m.auc == pytest.approx(m.balanced_accuracy)


def test_auc_undefined_with_one_class():
    assert math.isnan(roc_auc(np.ones(3, bool), np.array([0.1, 0.5, 0.9])))


def test_ece_and_reliability_bins_hand_computed():
    labels = np.array([False, True, True, False])
    scores = np.array([0.05, 0.15, 0.95, 1.0])  # 1.0 goes into the last bin
    bins = reliability_bins(labels, scores, n_bins=10)
    assert list(bins["n"]) == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins["mean_prob"][9] == pytest.approx(0.975)
    assert bins["galaxy_fraction"][9] == pytest.approx(0.5)
    assert math.isnan(bins["mean_prob"][4])
    # (1 * |0 - 0.05| + 1 * |1 - 0.15| + 2 * |0.5 - 0.975|) / 4
    expected = (0.05 + 0.85 + 2 * 0.475) / 4
    assert expected_calibration_error(labels, scores, n_bins=10) == pytest.approx(expected)
    assert compute_metrics(labels, scores).ece == pytest.approx(expected)


def test_ece_rejects_scores_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability_bins(LABELS, SCORES + 1.0)
    # compute_metrics still works; ECE is then undefined
    assert math.isnan(compute_metrics(LABELS, SCORES + 1.0, threshold=1.5).ece)


def test_nan_scores_are_missing_and_excluded():
    scores = SCORES.copy()
    scores[[0, 4]] = np.nan
    m = compute_metrics(LABELS, scores)
    keep = np.isfinite(scores)
    reference = compute_metrics(LABELS[keep], scores[keep])
    assert m.n_missing == 2
    assert m.n == 5
    for name in METRIC_NAMES:
        assert getattr(m, name) == pytest.approx(getattr(reference, name), nan_ok=True)


def test_undefined_ratios_are_nan():
    # nothing predicted to be a galaxy: galaxy precision is undefined
    m = compute_metrics(LABELS, np.zeros(LABELS.size))
    assert math.isnan(m.galaxy_precision)
    assert m.galaxy_recall == 0.0
    assert m.star_recall == 1.0
    empty = compute_metrics(np.zeros(0, bool), np.zeros(0))
    assert empty.n == 0 and math.isnan(empty.accuracy) and math.isnan(empty.balanced_accuracy)


def test_input_validation():
    with pytest.raises(ValueError, match="is_galaxy"):
        compute_metrics(np.array([0, 2, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="entries"):
        compute_metrics(LABELS, SCORES[:-1])


def test_extendedness_style_scores():
    # extendedness is 0/1; sizeExtendedness a score in [0, 1]: both thresholded at 0.5
    labels = np.array([True, True, False, False])
    extendedness = np.array([1.0, 0.0, 0.0, 1.0])
    size_extendedness = np.array([0.51, 0.49, 0.2, 0.5])
    assert compute_metrics(labels, extendedness).accuracy == pytest.approx(0.5)
    m = compute_metrics(labels, size_extendedness)
    assert m.galaxy_recall == pytest.approx(0.5)
    assert m.star_recall == pytest.approx(0.5)


def test_magnitude_bin_index_edges():
    index = magnitude_bin_index([17.9, 18.0, 18.5, 19.0, 20.0, np.nan, 21.0], [18.0, 19.0, 20.0])
    assert index.tolist() == [-1, 0, 0, 1, -1, -1, -1]
    with pytest.raises(ValueError, match="increasing"):
        magnitude_bin_index([18.0], [19.0, 18.0])


def test_compare_classifiers_bins_and_counts():
    labels = np.array([True, False, True, False, True, False])
    mag = np.array([18.2, 18.7, 19.5, 19.9, 25.0, np.nan])  # the last two are outside the bins
    scores = {
        "perfect": labels.astype(float),
        "inverted": np.where(labels, 0.0, 1.0),
        "gappy": np.array([1.0, np.nan, 0.0, 0.0, 1.0, 0.0]),
    }
    table = compare_classifiers(labels, scores, mag, mag_bins=[18.0, 19.0, 20.0, 21.0])
    assert len(table) == 3 * 4
    assert list(table["classifier"][:4]) == ["perfect"] * 4
    perfect = table[table["classifier"] == "perfect"]
    assert perfect["bin"].tolist() == [-1, 0, 1, 2]
    assert perfect["n"].tolist() == [6, 2, 2, 0]
    assert perfect["n_galaxy"].tolist() == [3, 1, 1, 0]
    assert perfect["n_star"].tolist() == [3, 1, 1, 0]
    assert perfect["accuracy"][:3].tolist() == [1.0, 1.0, 1.0]
    assert math.isnan(perfect["accuracy"][3])  # empty bin
    assert perfect["mag_lo"][1] == 18.0 and perfect["mag_hi"][1] == 19.0
    inverted = table[table["classifier"] == "inverted"]
    assert inverted["accuracy"][0] == 0.0
    gappy = table[table["classifier"] == "gappy"]
    assert gappy["n_missing"].tolist() == [1, 1, 0, 0]
    assert gappy["n"].tolist() == [5, 1, 2, 0]
    assert gappy["accuracy"][2] == pytest.approx(0.5)
    assert table.meta["mag_bins"] == [18.0, 19.0, 20.0, 21.0]


def test_compare_classifiers_thresholds():
    labels = np.array([True, False])
    scores = {"a": np.array([0.6, 0.3]), "b": np.array([0.6, 0.3])}
    table = compare_classifiers(
        labels, scores, np.array([20.0, 20.0]), mag_bins=[19, 21], threshold={"b": 0.7}
    )
    overall = table[table["bin"] == -1]
    assert overall["accuracy"].tolist() == [1.0, 0.5]
    assert table.meta["thresholds"] == {"a": 0.5, "b": 0.7}
    with pytest.raises(ValueError, match="unknown classifiers"):
        compare_classifiers(labels, scores, np.array([20.0, 20.0]), mag_bins=[19, 21], threshold={"c": 0.7})


def test_metrics_by_magnitude_matches_compute_metrics():
    rng = np.random.default_rng(5)
    labels = rng.random(200) < 0.5
    scores = rng.random(200)
    mag = rng.uniform(18, 24, 200)
    table = metrics_by_magnitude(labels, scores, mag, mag_bins=[18, 20, 22, 24], name="x")
    in_bin = (mag >= 20) & (mag < 22)
    reference = compute_metrics(labels[in_bin], scores[in_bin])
    row = table[table["bin"] == 1][0]
    assert row["n"] == in_bin.sum()
    for name in METRIC_NAMES:
        assert row[name] == pytest.approx(getattr(reference, name))


def test_majority_class_classifier():
    model = MajorityClassClassifier().fit(np.zeros(4), np.array([True, False, False, False]))
    prob = model.predict_proba(np.zeros(3))
    assert prob.tolist() == [0.25, 0.25, 0.25]
    m = compute_metrics(np.array([True, False, False]), prob)
    assert m.accuracy == pytest.approx(2 / 3)  # everything is called a star
    with pytest.raises(RuntimeError):
        MajorityClassClassifier().predict_proba(np.zeros(1))


def test_magnitude_only_classifier_hand_case():
    mag = np.array([18.1, 18.2, 18.3, 18.4, 21.5, 21.6])
    labels = np.array([False, False, False, True, True, True])
    model = MagnitudeOnlyClassifier(mag_bins=[18.0, 19.0, 20.0, 21.0, 22.0], prior_strength=0.0)
    model.fit(mag, labels)
    overall = 3 / 6
    # empty bins fall back to the overall fraction; outside the edges uses the end bins
    prob = model.predict_proba(np.array([18.5, 19.5, 21.9, 10.0, 30.0, np.nan]))
    assert prob[:5] == pytest.approx([0.25, overall, 1.0, 0.25, 1.0])
    assert math.isnan(prob[5])
    smoothed = MagnitudeOnlyClassifier(mag_bins=[18.0, 19.0, 20.0, 21.0, 22.0], prior_strength=2.0)
    smoothed.fit(mag, labels)
    assert smoothed.predict_proba(np.array([18.5]))[0] == pytest.approx((1 + 2 * overall) / (4 + 2))


def test_cross_fit_leaves_each_group_out():
    # three visits with galaxy fractions 0, 1/2, 1; with three folds each visit is predicted from the
    # other two only, so the majority-class prediction is the galaxy fraction of the other visits
    groups = np.repeat([1, 2, 3], 4)
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1], dtype=bool)
    prob = cross_fit_predict(
        MajorityClassClassifier,
        np.zeros(12),
        labels,
        groups=groups,
        n_folds=3,
        rng=np.random.default_rng(0),
    )
    assert prob[groups == 1] == pytest.approx(np.full(4, 6 / 8))
    assert prob[groups == 2] == pytest.approx(np.full(4, 4 / 8))
    assert prob[groups == 3] == pytest.approx(np.full(4, 2 / 8))


def test_cross_fit_without_groups_is_seeded_and_out_of_fold():
    rng_data = np.random.default_rng(3)
    mag = rng_data.uniform(18, 25, 2000)
    labels = rng_data.random(2000) < (mag - 18) / 7

    def factory():
        return MagnitudeOnlyClassifier(mag_bins=np.arange(18.0, 25.01, 0.5), prior_strength=1.0)

    first = cross_fit_predict(factory, mag, labels, n_folds=4, rng=np.random.default_rng(7))
    second = cross_fit_predict(factory, mag, labels, n_folds=4, rng=np.random.default_rng(7))
    assert np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, second)
    in_sample = factory().fit(mag, labels).predict_proba(mag)
    assert not np.allclose(first, in_sample)
    # the magnitude carries information here, so the cross-fitted predictor beats chance
    assert compute_metrics(labels, first).auc > 0.7
    with pytest.raises(ValueError, match="n_folds"):
        cross_fit_predict(factory, mag, labels, n_folds=1, rng=np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------
# Visit-clustered standard errors
# ---------------------------------------------------------------------------------------------


def test_clustered_se_of_independent_objects_is_binomial():
    from lsst.meas.contextnet.evaluation.clustered import clustered_proportion

    rng = np.random.default_rng(3)
    hits = rng.random(400) < 0.8
    p, se = clustered_proportion(hits, np.ones(400, bool), np.arange(400))
    assert p == pytest.approx(hits.mean())
    assert se == pytest.approx(math.sqrt(p * (1 - p) / 399))


def test_clustered_se_counts_visits_not_objects():
    from lsst.meas.contextnet.evaluation.clustered import clustered_proportion

    # 10 visits of 100 objects, each visit all right or all wrong: 10 draws, not 1000.
    visit_right = np.array([1, 1, 1, 0, 1, 1, 0, 1, 1, 1], bool)
    clusters = np.repeat(np.arange(10), 100)
    hits = np.repeat(visit_right, 100)
    p, se = clustered_proportion(hits, np.ones(1000, bool), clusters)
    assert p == pytest.approx(0.8)
    assert se == pytest.approx(math.sqrt(0.8 * 0.2 / 9))
    assert se > 5 * math.sqrt(0.8 * 0.2 / 1000)
    # Relabelling the visits changes nothing; one visit gives no error estimate.
    assert clustered_proportion(hits, np.ones(1000, bool), 7 - clusters)[1] == pytest.approx(se)
    assert math.isnan(clustered_proportion(hits, np.ones(1000, bool), np.zeros(1000))[1])
    assert all(math.isnan(v) for v in clustered_proportion(hits, np.zeros(1000, bool), clusters))


def test_margin_table_pairs_the_classifiers():
    from lsst.meas.contextnet.evaluation.clustered import margin_table

    rng = np.random.default_rng(5)
    n = 600
    labels = rng.random(n) < 0.5
    clusters = rng.integers(0, 12, n)
    mag = rng.uniform(18, 25, n)
    good = np.where(labels, 0.9, 0.1)
    noisy = np.where(rng.random(n) < 0.2, 1 - good, good)
    partial = good.copy()
    partial[:50] = np.nan  # not scored: the margin over it is taken over the other 550
    scores = {"model": noisy, "same": noisy.copy(), "perfect": good, "partial": partial}
    thresholds = dict.fromkeys(scores, 0.5)
    table = margin_table(
        labels, scores, thresholds, mag, clusters,
        reference="model", others=("same", "perfect", "partial", "absent"), mag_bins=[18, 21, 25],
    )  # fmt: skip
    assert list(table["bin"]) == [-1, 0, 1] and "margin_absent" not in table.colnames
    overall = table[0]
    accuracy = np.mean((noisy >= 0.5) == labels)
    assert overall["accuracy"] == pytest.approx(accuracy) and overall["n_clusters"] == 12
    # A classifier identical to the reference: margin 0 exactly, with no error.
    assert overall["margin_same"] == 0 and overall["margin_same_se"] == 0
    assert overall["margin_perfect"] == pytest.approx(accuracy - 1)
    # Over the objects both score: the model's accuracy on those 550 against the partial one's 1.
    model_on_both = np.mean((noisy[50:] >= 0.5) == labels[50:])
    assert overall["margin_partial"] == pytest.approx(model_on_both - 1)
    assert overall["margin_partial_n"] == n - 50 and overall["margin_perfect_n"] == n
    assert model_on_both != pytest.approx(accuracy)  # the objects left out matter here
    assert overall["accuracy_se"] > 0 and overall["margin_perfect_se"] > 0
    assert table["n"][1] + table["n"][2] == overall["n"]


def test_clusters_without_counted_objects_do_not_count():
    from lsst.meas.contextnet.evaluation.clustered import clustered_proportion

    rng = np.random.default_rng(8)
    clusters = np.repeat(np.arange(12), 50)
    hits = rng.random(600) < 0.7
    counted = clusters < 4  # objects in 4 of the 12 visits only
    p, se = clustered_proportion(hits, counted, clusters)
    assert (p, se) == clustered_proportion(hits[counted], np.ones(200, bool), clusters[counted])
    # G = 4, not 12: the G / (G - 1) factor is 4/3.
    totals = np.array([np.sum(hits[clusters == c] - p) / 200 for c in range(4)])
    assert se == pytest.approx(np.sqrt(4 / 3 * np.sum(totals**2)))
