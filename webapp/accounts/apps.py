from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "webapp.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib import admin

        from webapp.accounts import signals  # noqa: F401  (connects the receivers)
        from webapp.accounts.forms import ThrottledAdminAuthenticationForm

        # The admin's log-in form gets the same throttle as the site's.
        admin.site.login_form = ThrottledAdminAuthenticationForm
