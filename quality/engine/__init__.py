from quality.engine.boundary import boundary_iou
