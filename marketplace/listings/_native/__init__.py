"""The catalogue index's compiled search pass (C, compiled by the package build, ``setup.py``); see ``catalogue_scan.py``."""
