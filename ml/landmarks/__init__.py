"""Landmarks pipeline: 68-point landmarks, head pose and photo quality for a study photo."""
