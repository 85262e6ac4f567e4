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

# Example override: require the first CUDA GPU (fail instead of falling back to the CPU) and use
# large batches.
#   pipetask run ... -p pipelines/ContextNet.yaml -C contextnetClassifier:config/contextnetClassifier_gpu.py
config.device = "cuda:0"  # noqa: F821
config.batchSize = 16384  # noqa: F821
config.setBatchSize = 256  # noqa: F821
