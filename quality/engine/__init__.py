from quality.engine.boundary import boundary_iou
from quality.engine.version import ENGINE_VERSION

__all__ = ["ENGINE_VERSION", "boundary_iou", "evaluate", "EvalParams", "EvalResult"]


def __getattr__(name: str):
    # The COCO evaluator is imported on first use, so `import quality.engine` stays light.
    if name in ("evaluate", "EvalParams", "EvalResult", "evaluate_cells", "Cell"):
        from quality.engine import cocoeval

        return getattr(cocoeval, name)
    raise AttributeError(name)
