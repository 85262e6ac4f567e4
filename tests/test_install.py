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

"""The package as a user installs it: a built wheel, installed (not editable) into a fresh venv."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import export_tiny_model

REPO_ROOT = Path(__file__).resolve().parents[1]

PIPETASK = (
    "import sys; from lsst.ctrl.mpexec.cli.pipetask import main; sys.argv[0] = 'pipetask'; sys.exit(main())"
)


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_wheel_carries_the_pipelines_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(REPO_ROOT),
        ],
        tmp_path,
        dict(os.environ),
    )
    (wheel,) = dist.glob("lsst_meas_contextnet-*.whl")

    # A fresh venv whose only copy of this package is the wheel; its dependencies come from the
    # test environment's site-packages as a plain path entry (whose .pth files, among them the
    # editable install's, are not processed).
    venv = tmp_path / "venv"
    _run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, dict(os.environ))
    python = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        tmp_path,
        dict(os.environ),
    )
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    where = _run([str(python), "-c", "import lsst.meas.contextnet as m; print(m.__file__)"], work, env)
    assert where.stdout.strip().startswith(str(site)), where.stdout

    repo = work / "repo"
    model = export_tiny_model(work / "tiny.pt")
    _run(
        [str(python), "-m", "lsst.meas.contextnet.cli.main", "simulate", "--repo", str(repo)]
        + ["--collection", "sim", "--visits", "1", "--size", "256", "--seed", "2"],
        work,
        env,
    )
    _run(
        [str(python), "-c", PIPETASK, "run", "-b", str(repo), "-i", "sim", "-o", "out"]
        + ["-p", "resource://lsst.meas.contextnet/pipelines/ContextNet.yaml"]
        + ["-c", f"contextnetClassifier:modelPath={model}", "-c", "contextnetClassifier:device=cpu"]
        + ["--register-dataset-types"],
        work,
        env,
    )
    count = _run(
        [
            str(python),
            "-c",
            "import sys; from lsst.daf.butler import Butler; butler = Butler.from_config(sys.argv[1]); "
            "print(len(butler.query_datasets('contextnet_classification', collections='out')))",
            str(repo),
        ],
        work,
        env,
    )
    assert count.stdout.strip() == "1"
