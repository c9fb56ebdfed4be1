"""The quality engine: no Django; numbers that buyers can recompute with the reference tools.

Exports are resolved on first use (PEP 562) so that ``import quality.engine`` and
``python -m quality ...`` do not pay for scipy/torch imports a verb does not need.
"""

from quality.engine.version import ENGINE_VERSION

__all__ = ["ENGINE_VERSION", "boundary_iou", "evaluate", "EvalParams", "EvalResult", "evaluate_cells", "Cell"]


def __getattr__(name: str):
    if name == "boundary_iou":
        from quality.engine.boundary import boundary_iou

        return boundary_iou
    if name in ("evaluate", "EvalParams", "EvalResult", "evaluate_cells", "Cell"):
        from quality.engine import cocoeval

        return getattr(cocoeval, name)
    raise AttributeError(name)
