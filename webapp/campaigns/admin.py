from django.contrib import admin

from webapp.campaigns.models import Campaign, CampaignIteration, KeypointDataset, KeypointDatasetVersion


class ReadOnlyAdmin(admin.ModelAdmin):
    """Versions and campaign rows are written (never edited or deleted) by services; the admin shows them."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(KeypointDataset)
class KeypointDatasetAdmin(ReadOnlyAdmin):
    list_display = ("name", "study", "created_by", "created_at")
    list_filter = ("study",)


@admin.register(KeypointDatasetVersion)
class KeypointDatasetVersionAdmin(ReadOnlyAdmin):
    list_display = ("dataset", "number", "source", "note", "created_by", "created_at")
    list_filter = ("source",)
    exclude = ("instances",)


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ("name", "study", "dataset", "status", "progress", "queue", "created_at")
    list_filter = ("status", "queue")


@admin.register(CampaignIteration)
class CampaignIterationAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "k", "train_labels", "val_labels", "total_labels", "ap50", "nme")
