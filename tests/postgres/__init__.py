"""The suite's Postgres backend (tests/settings.py): Django's, with a faster flush."""
