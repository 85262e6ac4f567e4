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

"""Tests of ``contextnet simulate``: the command line, the Butler repo it writes, determinism."""

import numpy as np
import pytest
from lsst.daf.butler import Butler
from lsst.meas.contextnet.cli.main import main
from lsst.meas.contextnet.sim.exposure import SimulationConfig
from lsst.meas.contextnet.sim.simulate import simulate_repo

SIZE = 256


def _simulate(root, seed, collection="sim"):
    return simulate_repo(
        root,
        collection,
        visits=2,
        config=SimulationConfig(size=SIZE, density_scale=4.0),
        seed=seed,
        progress=False,
    )


def _read(root, collection="sim"):
    butler = Butler(str(root), collections=collection)
    out = {}
    for ref in sorted(
        butler.query_datasets("calexp"), key=lambda r: (r.dataId["visit"], r.dataId["detector"])
    ):
        data_id = {"instrument": "SimCam", "visit": ref.dataId["visit"], "detector": ref.dataId["detector"]}
        calexp = butler.get("calexp", data_id)
        out[(data_id["visit"], data_id["detector"])] = (
            np.array(calexp.image.array),
            butler.get("src", data_id),
            butler.get("truth", data_id),
        )
    return out


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("simulate")
    summaries = {name: _simulate(root / name, seed) for name, seed in (("a", 5), ("b", 5), ("c", 6))}
    return root, summaries


def test_simulate_writes_every_visit(repos):
    root, summaries = repos
    assert summaries["a"].data_ids == [(0, 0), (1, 0)]
    data = _read(root / "a")
    assert set(data) == {(0, 0), (1, 0)}
    for image, src, truth in data.values():
        assert image.shape == (SIZE, SIZE)
        assert len(src) > 0
        matched = truth["sourceId"][truth["sourceId"] >= 0]
        assert len(matched) > 0.8 * len(src)
        assert set(matched) <= set(src["sourceId"])
    # Visits draw their own PSF.
    fwhm = summaries["a"].visit_psf_fwhm
    assert fwhm[0] != fwhm[1]


def test_same_seed_identical_other_seed_differs(repos):
    root, _ = repos
    a, b, c = (_read(root / name) for name in "abc")
    for key in a:
        np.testing.assert_array_equal(a[key][0], b[key][0])
        assert a[key][1].as_array().tobytes() == b[key][1].as_array().tobytes()
        assert not np.array_equal(a[key][0], c[key][0])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "-5"], "size"),
        (["--band", "w"], "band"),
        (["--visits", "0"], "visits"),
        (["--detectors", "12"], "detectors"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, capsys, args, message):
    status = main(
        ["simulate", "--repo", str(tmp_path / "repo"), "--collection", "sim", "--no-progress", *args]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "error" in err and message in err


def test_cli_refuses_existing_collection(repos, capsys):
    root, _ = repos
    status = main(
        ["simulate", "--repo", str(root / "a"), "--collection", "sim", "--size", str(SIZE), "--no-progress"]
    )
    assert status == 2
    assert "'sim'" in capsys.readouterr().err


def test_simulate_into_a_read_only_location_is_a_clear_error(capsys) -> None:
    # /sys refuses new directories even to root, so this holds however the tests are run.
    assert (
        main(["simulate", "--repo", "/sys/contextnet-test-repo", "--collection", "sim", "--visits", "1"]) == 2
    )
    err = capsys.readouterr().err
    assert "cannot create a Butler repository at '/sys/contextnet-test-repo'" in err
    assert "Traceback" not in err
