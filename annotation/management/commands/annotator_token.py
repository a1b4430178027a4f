"""Print an API token for a local annotator, for scripts and the crowd simulator."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from annotation.services.annotators import annotator_for_user


class Command(BaseCommand):
    help = "Print the DRF API token of a user (creating the token and annotator record if needed)."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True, help="Username of the Django user.")
        parser.add_argument(
            "--create",
            action="store_true",
            help="Create the user, without a usable password, if it does not exist.",
        )
        parser.add_argument(
            "--staff", action="store_true", help="Make the user staff, for the staff endpoints."
        )

    def handle(self, *args, username: str, create: bool, staff: bool, **options):
        user_model = get_user_model()
        with transaction.atomic():
            user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
            if user is None:
                if not create:
                    raise CommandError(
                        f"user {username!r} does not exist; add --create to create it"
                    )
                user = user_model.objects.create_user(**{user_model.USERNAME_FIELD: username})
                user.set_unusable_password()
                user.save()
            if staff and not user.is_staff:
                user.is_staff = True
                user.save(update_fields=["is_staff"])
            annotator_for_user(user=user)
            token, _created = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
