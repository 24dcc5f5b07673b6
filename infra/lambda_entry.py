"""The write-back Lambda's entry point (``lambda_entry.handle``, at the root of its package).

Lambda's environment holds the ARNs of the secrets, not their values: at a cold start they are
read from Secrets Manager into the three settings Django needs (the database URL, the Redis URL,
the secret key), unless the environment already gives ``DATABASE_URL``; then the app's
``writeback.lambda_handler.handle`` does the work.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote


def _secrets_into_environment() -> None:
    if "DATABASE_URL" in os.environ:
        return
    import boto3

    secrets = boto3.client("secretsmanager")

    def value(variable: str) -> str:
        return str(secrets.get_secret_value(SecretId=os.environ[variable])["SecretString"])

    database = json.loads(value("DB_SECRET_ARN"))
    auth = quote(value("REDIS_SECRET_ARN"), safe="")
    redis = f"{os.environ['REDIS_HOST']}:{os.environ['REDIS_PORT']}"
    os.environ["DATABASE_URL"] = (
        f"postgresql://{quote(database['username'], safe='')}:{quote(database['password'], safe='')}"
        f"@{database['host']}:{database['port']}/{database['dbname']}?sslmode=require"
    )
    os.environ["REDIS_URL"] = f"rediss://:{auth}@{redis}/0"
    os.environ["SECRET_KEY"] = value("APP_SECRET_ARN")


_secrets_into_environment()

from writeback.lambda_handler import handle  # noqa: E402  (the settings' environment first)

__all__ = ["handle"]
