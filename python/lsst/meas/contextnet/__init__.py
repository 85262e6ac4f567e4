"""ContextNet star/galaxy classification for the LSST Science Pipelines."""

from lsst.meas.contextnet.version import __version__

__all__ = ["__version__"]
