"""Mask quality: the engine (``quality.engine``, no Django) and the Django app that stores and serves reports."""
