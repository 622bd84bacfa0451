"""What the study records tell the layers above them (analysis listens), without importing them."""

from django.dispatch import Signal

# Photos that left the study's working set (soft-deleted, or their visit or subject was):
# `photos` (a list of Photo), `actor`, `request`. Their queued and running analyses stop.
photos_withdrawn = Signal()

# A photo's view was corrected: `photo`, `old_view`, `actor`, `request`. Quality depends on the view.
photo_view_changed = Signal()
