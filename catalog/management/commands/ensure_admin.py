import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the admin superuser if absent (ADMIN_USERNAME / ADMIN_PASSWORD, or a generated password printed"
        " once)."
    )

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        username = settings.ADMIN_USERNAME
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"admin user {username!r} exists")
            return
        password = settings.ADMIN_PASSWORD or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        shown = password if not settings.ADMIN_PASSWORD else "(from ADMIN_PASSWORD)"
        self.stdout.write(self.style.SUCCESS(f"created admin user {username!r} with password {shown}"))
