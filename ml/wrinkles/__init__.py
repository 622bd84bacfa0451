"""Wrinkle analysis (Kim et al. 2023): semi-automatic labeling, U-Net with weighted deep supervision."""
