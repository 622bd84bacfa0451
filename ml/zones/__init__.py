"""Facial zones: 33-zone atlas, landmark zone model, HRNetV2 zone-segmentation ensemble."""
