"""Sphinx configuration for meas_contextnet (documenteer-style)."""

from documenteer.conf.pipelinespkg import *  # noqa: F403

project = "meas_contextnet"
html_theme_options["logotext"] = project  # noqa: F405
html_title = project
html_short_title = project
