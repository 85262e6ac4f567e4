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

"""Sphinx configuration for meas_contextnet (a standalone build: ``make docs``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "meas_contextnet"
author = "The meas_contextnet developers"
copyright = "2026, " + author

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "sphinx_automodapi.automodapi",
    "sphinx_automodapi.smart_resolver",
    "taskdocs",
]
root_doc = "index"
exclude_patterns = ["_build", "**/results/*.md"]
default_role = "py:obj"
nitpicky = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
automodapi_toctreedirnm = "py-api"
automodsumm_inherited_members = False
autodoc_typehints = "none"
html_theme = "alabaster"
html_title = project
suppress_warnings = ["config.cache"]
