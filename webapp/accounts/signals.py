"""Log-out and any change of password (change form, reset link, admin, `changepassword`) end the user's
API tokens, as they end the other browser sessions."""

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from webapp.accounts.services import api_tokens_revoke


@receiver(user_logged_out)
def revoke_tokens_at_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        api_tokens_revoke(user)


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def note_password_change(sender, instance, update_fields=None, **kwargs) -> None:
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._facet_password_changed = stored is not None and stored != instance.password


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def revoke_tokens_on_password_change(sender, instance, **kwargs) -> None:
    if getattr(instance, "_facet_password_changed", False):
        instance._facet_password_changed = False
        api_tokens_revoke(instance)
