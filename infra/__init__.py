"""Hybridsite on AWS: the CDK app (``infra.app``), its tables read from the apps' PynamoDB models
(``infra.tables``), one role per process from a declarative access map (``infra.access``), and the
write-back Lambda's package (``infra.lambda_build``). No app imports this package."""
