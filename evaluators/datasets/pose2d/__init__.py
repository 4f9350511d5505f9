"""2D human pose in images: COCO keypoints, MPII and ``synth_coco`` / ``synth_mpii``."""
