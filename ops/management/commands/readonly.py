from django.core.management.base import BaseCommand

from ops.readonly import is_read_only, read_only_set


class Command(BaseCommand):
    help = "Turn read-only mode on or off (write APIs answer 503, the admin refuses catalog edits), or show it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("state", nargs="?", choices=["on", "off"], help="omit to print the current state")

    def handle(self, *args, state: str | None, **options) -> None:
        if state is not None:
            read_only_set(on=state == "on")
        self.stdout.write(f"read-only: {'on' if is_read_only() else 'off'}")
