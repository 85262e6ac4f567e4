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

# Example override: use your own trained model (see 'contextnet train --output MODEL.pt') with a
# larger ensemble and a different seed. Environment variables and '~' are expanded.
#   pipetask run ... -p pipelines/ContextNet.yaml -C contextnetClassifier:config/contextnetClassifier_model.py
config.modelPath = "$HOME/contextnet/models/contextnet.pt"  # noqa: F821
config.nEnsemble = 10  # noqa: F821
config.seed = 2018  # noqa: F821
