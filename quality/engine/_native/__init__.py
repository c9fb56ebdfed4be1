"""Compiled kernels of the quality engine (C, compiled by the package build, ``setup.py``); see ``native.py``."""
