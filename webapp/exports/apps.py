from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "webapp.exports"
    label = "exports"

    def ready(self) -> None:
        from webapp.exports import signals  # noqa: F401  (connects the receivers)
