"""One router per resource: analyses (jobs), pose (synchronous keypoints), health/metadata, web page."""
