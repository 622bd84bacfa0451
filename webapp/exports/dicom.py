"""DICOM VL Photographic Image objects of study photos, their de-identified variant, and reading a VL
Photographic image from a clinic camera. Pure functions of pixels, landmarks and identifiers: no
database, no request (the views and webapp.exports.services gather and audit).

* One DICOM study per subject, one series per visit, one instance per photo; their UIDs are derived
  from the installation's secret seed and the Facet ids (`stable_uid`: the 2.25 UUID form, ISO/IEC
  9834-8), so two exports of the same photo carry the same UIDs, and a de-identified export (whose UIDs
  are derived with another salt) cannot be linked back to the identified one without the seed.
* The pixels are the stored photo's, uncompressed (Explicit VR Little Endian, RGB, 8 bits): a reader
  gets exactly the stored array back.
* De-identified (DICOM PS3.15 Annex E, Basic Application Confidentiality Profile with the Clean
  Recognizable Visual Features Option, E.3.2): the eyes are masked (or the photo is cropped to the
  region below the eyes) from the stored landmarks, Recognizable Visual Features (0028,0302) is NO,
  Patient Identity Removed (0012,0062) is YES, and no date, time, device, operator or free-text
  attribute is written at all.
"""

import datetime
import io
import uuid
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

VL_PHOTOGRAPHIC_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.4"
# External-camera photography (PS3.3 C.7.3.1.1.1).
MODALITY = "XC"
# iBUG-68: points 36–41 and 42–47 outline the two eyes.
EYE_POINTS = slice(36, 48)
DEIDENTIFICATION_METHOD = "Facet: PS3.15 Basic Profile; Clean Recognizable Visual Features (eyes {method})"
# CID 7050 De-identification Method codes (scheme DCM).
DEIDENTIFICATION_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113102", "Clean Recognizable Visual Features Option"),
)


class DeidentifyMethod(StrEnum):
    MASK_EYES = "mask_eyes"
    CROP_BELOW_EYES = "crop_below_eyes"


DEIDENTIFY_DESCRIPTIONS = {
    DeidentifyMethod.MASK_EYES: "eyes masked",
    DeidentifyMethod.CROP_BELOW_EYES: "cropped below the eyes",
}


class DicomImportError(ValueError):
    """A DICOM file Facet does not import; `message` is a sentence for the user, `code` a short slug."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def stable_uid(seed: str, *parts: object) -> str:
    """A DICOM UID in the 2.25 form, the same for the same seed and parts (at most 44 characters)."""
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, seed)
    return f"2.25.{uuid.uuid5(namespace, '/'.join(str(part) for part in parts)).int}"


@dataclass(frozen=True)
class PhotoIdentity:
    """What the DICOM object says about whose photo it is and where it belongs."""

    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    study_id: str
    series_number: int
    instance_number: int
    study_description: str = ""
    series_description: str = ""
    content_date: datetime.date | None = None
    acquisition_datetime: datetime.datetime | None = None
    manufacturer: str = ""
    manufacturer_model: str = ""


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def photo_dataset(pixels: np.ndarray, identity: PhotoIdentity, *, deidentified: str | None = None) -> Dataset:
    """A VL Photographic Image object of the RGB uint8 `pixels`. `deidentified` names the method used on
    the pixels (DeidentifyMethod) and turns the object into its de-identified form."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError("pixels must be an RGB uint8 array of shape (H, W, 3)")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = VL_PHOTOGRAPHIC_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = identity.sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = VL_PHOTOGRAPHIC_IMAGE_STORAGE
    ds.SOPInstanceUID = identity.sop_uid
    ds.ImageType = ["DERIVED" if deidentified else "ORIGINAL", "PRIMARY"]
    # Patient module: Facet knows the subject only by a pseudonymous code.
    ds.PatientName = ""
    ds.PatientID = identity.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    # General Study, General Series, General Equipment, General Image and Acquisition Context modules.
    ds.StudyInstanceUID = identity.study_uid
    ds.SeriesInstanceUID = identity.series_uid
    ds.StudyID = identity.study_id
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.Modality = MODALITY
    ds.SeriesNumber = identity.series_number
    ds.InstanceNumber = identity.instance_number
    ds.PatientOrientation = ""
    ds.AcquisitionContextSequence = Sequence()
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.Manufacturer = ""
    if deidentified:
        ds.StudyDate = ds.StudyTime = ds.ContentDate = ds.ContentTime = ""
        ds.RecognizableVisualFeatures = "NO"
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = DEIDENTIFICATION_METHOD.format(
            method=DEIDENTIFY_DESCRIPTIONS[DeidentifyMethod(deidentified)]
        )[:64]
        ds.DeidentificationMethodCodeSequence = Sequence(
            [_code(value, meaning) for value, meaning in DEIDENTIFICATION_CODES]
        )
        ds.LongitudinalTemporalInformationModified = "REMOVED"
    else:
        ds.RecognizableVisualFeatures = "YES"
        ds.StudyDescription = identity.study_description[:64]
        ds.SeriesDescription = identity.series_description[:64]
        date = identity.content_date
        ds.StudyDate = ds.ContentDate = date.strftime("%Y%m%d") if date else ""
        ds.StudyTime = ds.ContentTime = ""
        if identity.acquisition_datetime is not None:
            ds.AcquisitionDateTime = identity.acquisition_datetime.strftime("%Y%m%d%H%M%S")
        ds.Manufacturer = identity.manufacturer[:64]
        if identity.manufacturer_model:
            ds.ManufacturerModelName = identity.manufacturer_model[:64]
    # Image Pixel module: uncompressed 8-bit RGB, colour-by-pixel.
    height, width = pixels.shape[:2]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows = height
    ds.Columns = width
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def dataset_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _eye_geometry(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError("landmarks must be a (68, 2) array in iBUG-68 order")
    eyes = points[EYE_POINTS]
    interocular = float(np.linalg.norm(eyes[:6].mean(axis=0) - eyes[6:].mean(axis=0)))
    return eyes, max(interocular, 1.0)


def eye_box(landmarks: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The rectangle (x0, y0, x1, y1) masked over both eyes: the eye outlines widened by 30 % and
    heightened by 25 % of the inter-ocular distance, so lids and the inner corners are covered too."""
    eyes, distance = _eye_geometry(landmarks)
    x0, y0 = eyes.min(axis=0) - (0.30 * distance, 0.25 * distance)
    x1, y1 = eyes.max(axis=0) + (0.30 * distance, 0.25 * distance)
    height, width = shape[:2]
    return (
        int(np.clip(np.floor(x0), 0, width)),
        int(np.clip(np.floor(y0), 0, height)),
        int(np.clip(np.ceil(x1), 0, width)),
        int(np.clip(np.ceil(y1), 0, height)),
    )


def mask_eyes(pixels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A copy of `pixels` with a black bar over both eyes."""
    x0, y0, x1, y1 = eye_box(landmarks, pixels.shape)
    masked = pixels.copy()
    masked[y0:y1, x0:x1] = 0
    return masked


def crop_below_eyes(pixels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face below the eyes (nose, cheeks, mouth and chin), the region the normality score reads
    by default: from below the masked eye bar to the chin, between the outermost jaw points."""
    _, _, _, top = eye_box(landmarks, pixels.shape)
    points = np.asarray(landmarks, dtype=np.float64)
    height, width = pixels.shape[:2]
    x0 = int(np.clip(np.floor(points[:, 0].min()), 0, width))
    x1 = int(np.clip(np.ceil(points[:, 0].max()), 0, width))
    bottom = int(np.clip(np.ceil(points[:, 1].max()), 0, height))
    if bottom - top < 2 or x1 - x0 < 2:
        raise ValueError("the landmarks leave no face below the eyes to crop")
    return np.ascontiguousarray(pixels[top:bottom, x0:x1])


def deidentify_pixels(pixels: np.ndarray, landmarks: np.ndarray, method: str) -> np.ndarray:
    if DeidentifyMethod(method) is DeidentifyMethod.MASK_EYES:
        return mask_eyes(pixels, landmarks)
    return crop_below_eyes(pixels, landmarks)


# --- import --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DicomPhoto:
    """What Facet takes from a VL Photographic image: the pixels and the capture fields it keeps."""

    pixels: np.ndarray
    patient_id: str
    capture_time: datetime.datetime | None
    camera_make: str
    camera_model: str


def _read(data: bytes, *, stop_before_pixels: bool) -> Dataset:
    try:
        return dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as error:
        raise DicomImportError(
            "The file is not a readable DICOM file (no DICM preamble or a damaged header).", "not_dicom"
        ) from error


def read_vl_photo(data: bytes, *, max_pixels: int) -> DicomPhoto:
    """Check that `data` is an 8-bit colour or grey VL Photographic image of at most `max_pixels`
    pixels, and decode it to RGB uint8; refusals raise DicomImportError with a readable message."""
    header = _read(data, stop_before_pixels=True)
    sop_class = str(header.get("SOPClassUID", ""))
    if sop_class != VL_PHOTOGRAPHIC_IMAGE_STORAGE:
        name = getattr(header.get("SOPClassUID"), "name", "") or sop_class or "none"
        raise DicomImportError(
            f"The DICOM file is not a VL Photographic Image (its SOP class is {name}); Facet imports "
            "photographs from clinic cameras only.",
            "not_vl_photographic",
        )
    rows, columns = int(header.get("Rows", 0) or 0), int(header.get("Columns", 0) or 0)
    if rows * columns > max_pixels:
        raise DicomImportError(
            f"The image is {columns}×{rows} pixels, more than the limit of {max_pixels / 1e6:g} megapixels.",
            "too_many_pixels",
        )
    if int(header.get("BitsAllocated", 8) or 8) != 8 or int(header.get("NumberOfFrames", 1) or 1) != 1:
        raise DicomImportError(
            "Facet imports single-frame 8-bit photographs; this DICOM image has several frames or "
            "more than 8 bits per sample.",
            "unsupported_dicom_image",
        )
    dataset = _read(data, stop_before_pixels=False)
    if "PixelData" not in dataset:
        raise DicomImportError("The DICOM file holds no pixel data.", "no_pixel_data")
    try:
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom raises several types for codecs it lacks or damaged data
        raise DicomImportError(
            f"The DICOM image could not be decoded ({dataset.file_meta.TransferSyntaxUID.name}); export it "
            "uncompressed or as baseline JPEG.",
            "undecodable_dicom",
        ) from error
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise DicomImportError("The DICOM image is neither RGB nor greyscale.", "unsupported_dicom_image")
    return DicomPhoto(
        pixels=np.ascontiguousarray(pixels.astype(np.uint8)),
        patient_id=str(dataset.get("PatientID", "") or ""),
        capture_time=_acquisition_time(dataset),
        camera_make=str(dataset.get("Manufacturer", "") or "")[:100],
        camera_model=str(dataset.get("ManufacturerModelName", "") or "")[:100],
    )


def _acquisition_time(dataset: Dataset) -> datetime.datetime | None:
    text = str(dataset.get("AcquisitionDateTime", "") or "")
    if not text:
        date, time = str(dataset.get("ContentDate", "") or ""), str(dataset.get("ContentTime", "") or "")
        text = date + time.split(".")[0] if date else ""
    text = text.split(".")[0].split("+")[0]
    for length, pattern in ((14, "%Y%m%d%H%M%S"), (12, "%Y%m%d%H%M"), (8, "%Y%m%d")):
        try:
            return datetime.datetime.strptime(text[:length], pattern).replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
    return None
