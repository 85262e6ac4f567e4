"""ContextNet star/galaxy classification for the LSST Science Pipelines."""

from .version import __version__

__all__ = ["__version__"]
