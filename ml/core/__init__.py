"""Shared building blocks: image I/O, face detection, landmarks, head pose, alignment, quality, metrics."""
