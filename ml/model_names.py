"""The registry name of every model, written once here.

Pipelines register these names in ``ml/<pipeline>/models.py``; the command line, the workers and
the web app import the constants, so a name is never spelled twice.
"""

DLIB_68 = "dlib-68"
YOLO_POSE68 = "yolo-pose68"
ZONES_LANDMARK = "zones-landmark"
ZONES_HRNET = "zones-hrnet"
WRINKLES_UNET_WDS = "wrinkles-unet-wds"
WRINKLE_TYPES_YOLO = "wrinkle-types-yolov8n"
WRINKLE_TYPES_GEOMETRY = "wrinkle-types-geometry"
NORMALITY_AUTOENCODER = "normality-autoencoder-128"
NORMALITY_INPAINTING = "normality-inpainting-128"
NORMALITY_STYLEGAN2 = "normality-stylegan2-ffhq"
NORMALITY_REGRESSOR = "normality-rating-regressor"
MEDIAPIPE_FACEMESH = "mediapipe-facemesh"

# Face detectors (task "face-detection"); the landmark models run on one of them.
YUNET = "yunet"
DLIB_HOG = "dlib-hog"
DLIB_MMOD = "dlib-mmod"
OPENCV_HAAR = "opencv-haar"
BLAZEFACE = "blazeface"
