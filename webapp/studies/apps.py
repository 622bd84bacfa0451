from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "webapp.studies"
    label = "studies"

    def ready(self) -> None:
        from webapp import stored_files

        stored_files.connect()
