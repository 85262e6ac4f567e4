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

"""Scale-out on an existing engine: ``bps submit`` with Parsl on this machine, against ``pipetask run``."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import export_tiny_model

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)
    # BPS puts its submit directory under $PWD, which must follow cwd.
    env = os.environ | {
        "OMP_NUM_THREADS": "1",
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
        "PWD": str(cwd),
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_bps_parsl_submission_equals_pipetask_run(tmp_path: Path) -> None:
    from lsst.daf.butler import Butler

    bin_dir = Path(sys.executable).parent
    repo = tmp_path / "repo"
    model = export_tiny_model(tmp_path / "tiny.pt")
    _run(
        [str(bin_dir / "contextnet"), "simulate", "--repo", str(repo), "--collection", "sim"]
        + ["--visits", "2", "--detectors", "2", "--size", "256", "--seed", "4"],
        tmp_path,
    )
    config = ["-c", f"contextnetClassifier:modelPath={model}", "-c", "contextnetClassifier:device=cpu"]
    _run(
        [str(bin_dir / "pipetask"), "run", "-b", str(repo), "-i", "sim", "-o", "by-pipetask"]
        + [
            "-p",
            "resource://lsst.meas.contextnet/pipelines/ContextNet.yaml",
            *config,
            "--register-dataset-types",
        ],
        tmp_path,
    )
    _run(
        [str(bin_dir / "bps"), "submit", str(REPO_ROOT / "bps" / "contextnet_local.yaml")]
        + ["-b", str(repo), "-i", "sim", "-o", "by-bps", "--extra-qgraph-options", " ".join(config)],
        tmp_path,
    )
    butler = Butler.from_config(str(repo))
    by_pipetask = {
        ref.dataId: ref
        for ref in butler.query_datasets("contextnet_classification", collections="by-pipetask")
    }
    by_bps = {
        ref.dataId: ref for ref in butler.query_datasets("contextnet_classification", collections="by-bps")
    }
    assert len(by_bps) == 4 and set(by_bps) == set(by_pipetask)
    # The four quanta ran as two jobs, one per visit.
    jobs = sorted(path.name for path in (tmp_path / "submit").rglob("contextnetVisit_*.stdout"))
    assert jobs == ["contextnetVisit_0.stdout", "contextnetVisit_1.stdout"]
    for data_id, ref in by_bps.items():
        ours, theirs = butler.get(ref), butler.get(by_pipetask[data_id])
        assert len(ours) == len(theirs) > 0
        for name in ours.colnames:
            np.testing.assert_array_equal(np.asarray(ours[name]), np.asarray(theirs[name]))
    butler.close()
