"""Test configuration shared by the whole suite."""

import os

from hypothesis import settings

# Property tests draw the same examples on every run (and in CI), so the suite is deterministic;
# set HYPOTHESIS_PROFILE=explore to search with fresh random examples.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
