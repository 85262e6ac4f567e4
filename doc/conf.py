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
