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

"""Tests of set construction and ensembled inference."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lsst.meas.contextnet.ensemble import EnsembleResult, build_sets, ensemble_predict, model_set_size
from lsst.meas.contextnet.model import ContextNetConfig, build_model
from lsst.meas.contextnet.symmetry import SYMMETRY_GROUPS, apply_symmetry

TINY = {"global_widths": (16,), "predict_widths": (8,), "n_local": 4, "conv_channels": (3, 4)}


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=400),
    m=st.integers(min_value=1, max_value=60),
    n_p=st.integers(min_value=1, max_value=7),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_build_sets_properties(n, m, n_p, seed):
    sets = build_sets(n, m, n_p, np.random.default_rng(seed))
    assert sets.dtype == np.int64
    if n == 0:
        assert sets.shape == (0, m)
        return
    assert sets.min() >= 0 and sets.max() < n
    if n >= m:
        n_sets = math.ceil(n_p * n / m)
        assert sets.shape == (n_sets, m)
        for row in sets:
            assert np.unique(row).size == m, "duplicate inside a set"
        counts = np.bincount(sets.ravel(), minlength=n)
        assert counts.min() >= n_p
        assert counts.max() <= n_p + 1
        assert int(np.sum(counts == n_p + 1)) == n_sets * m - n_p * n
    else:
        assert sets.shape == (n_p, m)
        for row in sets:
            per_set = np.bincount(row, minlength=n)
            # Every object is in every set, the copies spread evenly.
            assert per_set.min() == m // n
            assert per_set.max() == m // n + (1 if m % n else 0)


def test_build_sets_is_seeded_and_random():
    a = build_sets(500, 50, 3, np.random.default_rng(7))
    b = build_sets(500, 50, 3, np.random.default_rng(7))
    c = build_sets(500, 50, 3, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Sets are not simply consecutive objects.
    assert not np.array_equal(np.sort(a[0]), np.arange(a[0].min(), a[0].min() + 50))


def test_build_sets_rejects_bad_sizes():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n must be"):
        build_sets(-1, 5, 1, rng)
    with pytest.raises(ValueError, match="m must be"):
        build_sets(5, 0, 1, rng)
    with pytest.raises(ValueError, match="n_p must be"):
        build_sets(5, 5, 0, rng)


def make_model(name: str, m: int, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ContextNetConfig.preset(name, m=m, **TINY)).eval()


def make_objects(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    cutouts = rng.normal(size=(n, 28, 28)).astype(np.float32)
    positions = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    return cutouts, positions


def brute_force(model, cutouts, positions, n_p, seed, m):
    """Reference: predict each set with forward(), average each object once per set."""
    sets = build_sets(len(cutouts), m, n_p, np.random.default_rng(seed))
    values = [[] for _ in range(len(cutouts))]
    with torch.no_grad():
        for row in sets:
            probs = model(
                torch.from_numpy(cutouts[row][:, None][None]), torch.from_numpy(positions[row][None])
            )[0]
            seen = set()
            for index, prob in zip(row, probs.numpy(), strict=True):
                if index not in seen:
                    seen.add(index)
                    values[index].append(float(prob))
    return (
        np.array([np.mean(v) for v in values]),
        np.array([np.std(v) for v in values]),
        np.array([len(v) for v in values]),
    )


@pytest.mark.parametrize(("n", "m", "n_p"), [(45, 10, 3), (10, 10, 2), (4, 9, 3), (1, 5, 2)])
def test_cached_equals_recompute_and_brute_force(n, m, n_p):
    model = make_model("light", m)
    cutouts, positions = make_objects(n)
    cached = ensemble_predict(model, cutouts, positions, n_p, seed=11, batch_sets=3, local_batch=7)
    recompute = ensemble_predict(model, cutouts, positions, n_p, seed=11, batch_sets=2, method="recompute")
    mean, std, n_sets = brute_force(model, cutouts, positions, n_p, 11, m)
    assert isinstance(cached, EnsembleResult)
    np.testing.assert_allclose(cached.mean, recompute.mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(cached.std, recompute.std, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(cached.n_sets, recompute.n_sets)
    np.testing.assert_allclose(cached.mean, mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(cached.std, std, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(cached.n_sets, n_sets)
    assert cached.n_sets.min() >= n_p
    assert cached.mean.dtype == np.float32 and cached.n_sets.dtype == np.int32


def test_ensemble_seeded_and_sets_matter():
    model = make_model("light", 8)
    cutouts, positions = make_objects(40)
    a = ensemble_predict(model, cutouts, positions, 3, seed=1)
    b = ensemble_predict(model, cutouts, positions, 3, seed=np.random.default_rng(1))
    c = ensemble_predict(model, cutouts, positions, 3, seed=2)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert not np.array_equal(a.mean, c.mean)
    assert a.std.max() > 0


def test_local_only_ensemble_has_no_spread():
    model = make_model("local-only", 8)
    cutouts, positions = make_objects(30)
    result = ensemble_predict(model, cutouts, positions, 4, seed=3, device="cpu")
    with torch.no_grad():
        direct = model.predict_sets(
            model.local_features(torch.from_numpy(cutouts[:, None]), torch.from_numpy(positions))[None]
        )[0].numpy()
    np.testing.assert_allclose(result.mean, direct, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.std, 0, atol=1e-6)


def test_empty_input_and_errors():
    model = make_model("light", 5)
    result = ensemble_predict(
        model, np.empty((0, 28, 28), np.float32), np.empty((0, 2), np.float32), 3, seed=0
    )
    assert result.mean.shape == result.std.shape == result.n_sets.shape == (0,)
    cutouts, positions = make_objects(6)
    with pytest.raises(ValueError, match="positions must have shape"):
        ensemble_predict(model, cutouts, positions[:5], 2, seed=0)
    with pytest.raises(ValueError, match="normalized_cutouts"):
        ensemble_predict(model, cutouts[:, :5], positions, 2, seed=0)
    with pytest.raises(ValueError, match="method"):
        ensemble_predict(model, cutouts, positions, 2, seed=0, method="fast")
    assert model_set_size(model) == 5
    with pytest.raises(ValueError, match="set size"):
        model_set_size(torch.nn.Linear(2, 2))


def test_symmetries_average_each_set_over_the_transformed_detector():
    model = make_model("light", 8)
    cutouts, positions = make_objects(30)
    codes = SYMMETRY_GROUPS[8]
    averaged = ensemble_predict(model, cutouts, positions, 2, seed=4, symmetries=codes)
    sets = build_sets(30, 8, 2, np.random.default_rng(4))
    per_code = []
    with torch.no_grad():
        for code in codes:
            sym_cutouts, sym_positions = apply_symmetry(cutouts, positions, code)
            per_code.append(
                model(torch.from_numpy(sym_cutouts[sets][:, :, None]), torch.from_numpy(sym_positions[sets]))
            )
    per_set = torch.stack(per_code).mean(0).numpy()
    mean = np.bincount(sets.ravel(), weights=per_set.ravel(), minlength=30) / np.bincount(sets.ravel())
    np.testing.assert_allclose(averaged.mean, mean, rtol=0, atol=1e-6)
    identity = ensemble_predict(model, cutouts, positions, 2, seed=4)
    assert np.abs(averaged.mean - identity.mean).max() > 1e-4
    np.testing.assert_array_equal(averaged.n_sets, identity.n_sets)
    np.testing.assert_array_equal(
        ensemble_predict(model, cutouts, positions, 2, seed=4, symmetries=(0,)).mean, identity.mean
    )
    for bad in ((), (8,)):
        with pytest.raises(ValueError, match="symmetries"):
            ensemble_predict(model, cutouts, positions, 2, seed=4, symmetries=bad)
