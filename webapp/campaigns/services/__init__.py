"""Writes of the landmark-campaign domain, one module per concern; every change of state is audited.

* :mod:`.versions` — datasets and their immutable versions
* :mod:`.imports` — importing labels (COCO, dlib XML, iBUG .pts)
* :mod:`.exports` — exporting a version (YOLO-pose, COCO)
* :mod:`.review` — accepting or rejecting model suggestions
* :mod:`.runs` — campaigns: creation and the worker's records (their lifecycle is ``webapp.runs``)
"""

from webapp.campaigns.services.errors import LandmarkDataError, SplitRuleError
from webapp.campaigns.services.exports import EXPORT_FORMATS, version_export
from webapp.campaigns.services.imports import IMPORT_FORMATS, MAPPINGS, labels_import
from webapp.campaigns.services.review import review_accept, review_reject, suggestions_create
from webapp.campaigns.services.runs import (
    campaign_attach_output,
    campaign_create,
    campaign_progress,
    campaign_record_iteration,
    campaign_register_model,
    campaign_run_dir,
    campaign_set_run_dir,
)
from webapp.campaigns.services.versions import (
    dataset_create,
    instance_to_ml,
    photo_file_name,
    version_counts,
    version_from_ml,
    version_instances,
    version_to_ml,
)

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "MAPPINGS",
    "LandmarkDataError",
    "SplitRuleError",
    "campaign_attach_output",
    "campaign_create",
    "campaign_progress",
    "campaign_record_iteration",
    "campaign_register_model",
    "campaign_run_dir",
    "campaign_set_run_dir",
    "dataset_create",
    "instance_to_ml",
    "labels_import",
    "photo_file_name",
    "review_accept",
    "review_reject",
    "suggestions_create",
    "version_counts",
    "version_export",
    "version_from_ml",
    "version_instances",
    "version_to_ml",
]
