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

"""The visit benchmark runs with PyTorch and NumPy alone (as on a bare GPU machine), here on the CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RUN = """
import sys
from lsst.meas.contextnet.tools.visitbench import main
status = main(sys.argv[1:])
heavy = ("galsim", "piff", "astropy", "lsst.daf", "lsst.pipe", "lsst.images", "lsst.utils")
print("IMPORTED", sorted(m for m in sys.modules if m.startswith(heavy)))
sys.exit(status)
"""


def test_visit_benchmark_tiny_on_cpu(tmp_path: Path) -> None:
    output = tmp_path / "visit.json"
    args = ["--output", str(output), "--device", "cpu", "--detectors", "3", "--sources", "64"]
    args += ["--batch-detectors", "2", "--distinct-detectors", "2", "--repeat", "1"]
    # Only the package's own sources on the path, not the installed environment's site hooks.
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "python"), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "IMPORTED []" in result.stdout
    results = json.loads(output.read_text())
    assert results["n_sources"] == 3 * 64
    f32 = results["float32"]
    assert set(f32["split_s"]) == {"h2d", "local", "context", "d2h"}
    assert f32["visit_s"] > 0 and f32["sources_per_s"] > 0
    assert results["eager_float32_max_abs_diff"] <= 1e-4
    assert results["bfloat16"]["max_abs_prob_change"] <= 0.05
    assert results["float16"] == {"skipped": "float16 autocast is for GPUs"}
    assert results["device"]["bf16_peak_tflops"] is None  # no known GPU here
