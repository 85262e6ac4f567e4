"""GalSim simulation of LSST-like single-visit exposures and of training cutout sets."""
