"""Names of the Celery tasks the web process sends (by name: it never imports ``workers``).

No Django import here: ``workers`` registers its tasks under these names at import time.
"""

ANALYSIS = "workers.tasks.run_analysis_job"
WRINKLE_TRAINING = "workers.training.train_wrinkle_model"
LANDMARK_CAMPAIGN = "workers.campaigns.run_landmark_campaign"
RATING_REGRESSOR_FIT = "workers.ratings.fit_rating_regressor"
STUDY_EXPORT = "workers.exports.build_study_export"
# Periodic (Celery beat, CELERY_BEAT_SCHEDULE in webapp.settings), not a run.
PURGE_EXPIRED_EXPORTS = "workers.exports.purge_expired_exports"
