"""Accounts in Django admin, audited like every other admin change. Accounts are deactivated, never
deleted: the audit trail keeps naming them (webapp/audit/models.py)."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from webapp.audit.admin import AuditedModelAdmin


class AuditedUserAdmin(AuditedModelAdmin, UserAdmin):
    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AuditedGroupAdmin(AuditedModelAdmin, GroupAdmin):
    pass


class AuditedTokenAdmin(AuditedModelAdmin, TokenAdmin):
    pass


class AuditedTOTPDeviceAdmin(AuditedModelAdmin, TOTPDeviceAdmin):
    pass


for model, model_admin in (
    (User, AuditedUserAdmin),
    (Group, AuditedGroupAdmin),
    (TokenProxy, AuditedTokenAdmin),
    (TOTPDevice, AuditedTOTPDeviceAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
