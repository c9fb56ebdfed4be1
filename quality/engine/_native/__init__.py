"""Compiled kernels of the quality engine (C, built by ``build.py``); see ``native.py``."""
