from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "webapp.analysis"
    label = "analysis"

    def ready(self) -> None:
        from webapp.analysis import signals  # noqa: F401  (connects the receivers)
        from webapp.analysis.kinds import untrained_kinds
        from webapp.studies import catalogue

        catalogue.register(untrained_kinds)
