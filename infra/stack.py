"""Hybridsite's production stack: network, Aurora PostgreSQL, ElastiCache Redis, the DynamoDB
tables read from the code, one ECS Fargate service and one IAM role per process, the write-back
Lambda on the carts' and drafts' streams, and the alarms. Synthesized without an account, a region
or Docker: images come from an ECR repository and tag given as parameters, the Lambda from the
package ``make lambda`` builds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from . import access
from .config import Config
from .nag import acknowledge
from .tables import Key, TableSpec

REDIS_PORT = 6380  # not the well-known port: one more thing a scan of the network does not find

# Each container composes its URLs from the secrets ECS gives it (generated without punctuation,
# so that they need no quoting in a URL), then runs its process.
_URLS = (
    'export DATABASE_URL="postgresql://$DB_USER:$DB_PASSWORD@$DB_HOST:$DB_PORT/$DB_NAME?sslmode=require" '
    'REDIS_URL="rediss://:$REDIS_AUTH@$REDIS_HOST:$REDIS_PORT/0" '
    'CELERY_BROKER_URL="rediss://:$REDIS_AUTH@$REDIS_HOST:$REDIS_PORT/1?ssl_cert_reqs=required"'
)
# The load balancer's health check asks with the task's own address as Host: it is added to
# ALLOWED_HOSTS from the task metadata endpoint.
_TASK_ADDRESS = (
    'export ALLOWED_HOSTS="$ALLOWED_HOSTS,$(python -c \'import json, os, urllib.request; '
    'print(json.load(urllib.request.urlopen(os.environ["ECS_CONTAINER_METADATA_URI_V4"]))'
    '["Networks"][0]["IPv4Addresses"][0])\')"'
)
_PROMETHEUS = 'rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"'


@dataclass(frozen=True)
class Process:
    """One ECS service: its role name (``infra.access``), its command, its size and count."""

    role: str
    command: tuple[str, ...]
    count: int
    cpu: int = 512
    memory: int = 1024


class HybridsiteStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, tables: list[TableSpec],
        writeback_tables: list[str], **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        image_repository = cdk.CfnParameter(
            self, "ImageRepository", description="ECR repository holding the Hybridsite image (the Dockerfile's)",
        )
        image_tag = cdk.CfnParameter(self, "ImageTag", description="The image's tag to run")
        certificate_arn = cdk.CfnParameter(
            self, "CertificateArn", description=f"ACM certificate of {config.domain_name}, for the load balancer",
        )
        self.alarm_topic = sns.Topic(
            self, "Alarms", enforce_ssl=True,
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
        )

        self.vpc = self._network()
        self.app_security_group = ec2.SecurityGroup(
            self, "AppTasks", vpc=self.vpc, description="Hybridsite tasks and the write-back Lambda",
        )
        self.database = self._database()
        self.redis_host, self.redis_secret = self._redis()
        self.app_secret = secretsmanager.Secret(
            self, "AppSecret", description="Django's SECRET_KEY",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=64),
        )
        acknowledge(self.app_secret, {"AwsSolutions::AwsSolutions-SMG4": (
            "a new SECRET_KEY logs every user out: it is changed on purpose, with a deploy"
        )})
        assert self.database.secret is not None  # generated credentials
        self.secrets = {"database": self.database.secret, "redis-auth": self.redis_secret, "app": self.app_secret}
        self.tables = {spec.name: self._table(spec) for spec in tables}
        self.roles = {role: self._task_role(role, tables) for role in access.ROLES}

        repository = ecr.Repository.from_repository_name(self, "Repository", image_repository.value_as_string)
        self.image = ecs.ContainerImage.from_ecr_repository(repository, tag=image_tag.value_as_string)
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=self.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.services = {process.role: self._service(process) for process in self._processes()}
        for service in self.services.values():  # a new model's table exists before the code that uses it runs
            for table in self.tables.values():
                service.node.add_dependency(table)
        self.one_off = self._task_definition(
            Process("migrate", ("sh", "-c", "python manage.py migrate --noinput && python manage.py projections_setup"),
                    count=0),
        )
        self.load_balancer = self._load_balancer(self.services["web"], certificate_arn.value_as_string)
        self.writeback = self._writeback_lambda(writeback_tables)
        self._alarms(writeback_tables)
        self._outputs()

    # --- network ---------------------------------------------------------------------------------

    def _network(self) -> ec2.Vpc:
        """Public subnets for the load balancer only; everything else in isolated subnets, reaching
        AWS's APIs through endpoints (no NAT: nothing needs the internet)."""
        vpc = ec2.Vpc(
            self, "Network", max_azs=2, nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20),
            ],
        )
        vpc.add_flow_log("FlowLog")
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        vpc.add_gateway_endpoint("DynamoDB", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets=[private])
        vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[private])  # ECR's layers
        for name, service in {
            "DynamoDBStreams": ec2.InterfaceVpcEndpointAwsService.DYNAMODB_STREAMS,
            "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
            "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
            "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
            "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
        }.items():
            endpoint = vpc.add_interface_endpoint(name, service=service, subnets=private, private_dns_enabled=True)
            acknowledge(endpoint, {"AwsSolutions::AwsSolutions-EC23": (
                "cdk-nag cannot read the VPC's CIDR (a token): the endpoint admits HTTPS from the VPC only"
            )})
        return vpc

    def _private(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

    # --- Postgres and Redis ----------------------------------------------------------------------

    def _database(self) -> rds.DatabaseCluster:
        cluster = rds.DatabaseCluster(
            self, "Database",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_17_9),
            credentials=rds.Credentials.from_generated_secret(
                "hybridsite", exclude_characters=" %+~`#$&*()|[]{}:;<>?!'/@\"\\=,.^-_",
            ),
            default_database_name="hybridsite",
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=[rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True)],
            serverless_v2_min_capacity=0.5, serverless_v2_max_capacity=16,
            vpc=self.vpc, vpc_subnets=self._private(),
            storage_encrypted=True, iam_authentication=True, deletion_protection=True,
            backup=rds.BackupProps(retention=cdk.Duration.days(14)),
            cloudwatch_logs_exports=["postgresql"],
            removal_policy=cdk.RemovalPolicy.SNAPSHOT,
        )
        cluster.connections.allow_default_port_from(self.app_security_group, "Hybridsite tasks")
        acknowledge(cluster, {"AwsSolutions::AwsSolutions-SMG4": (
            "tasks read the password when they start: rotate it with a rolling deploy (docs/deploy/aws.md)"
        )})
        return cluster

    def _redis(self) -> tuple[str, secretsmanager.Secret]:
        """A replication group of two nodes in two zones with automatic failover; TLS, encryption at
        rest and an AUTH token from Secrets Manager. The cache evicts only keys with a TTL
        (``volatile-lru``): the broker's queues (database 1) have none."""
        secret = secretsmanager.Secret(
            self, "RedisAuth", description="ElastiCache AUTH token",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=64),
        )
        security_group = ec2.SecurityGroup(self, "RedisNodes", vpc=self.vpc, description="ElastiCache Redis")
        security_group.add_ingress_rule(self.app_security_group, ec2.Port.tcp(REDIS_PORT), "Hybridsite tasks")
        subnets = elasticache.CfnSubnetGroup(
            self, "RedisSubnets", description="Hybridsite Redis",
            subnet_ids=self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
        )
        parameters = elasticache.CfnParameterGroup(
            self, "RedisParameters", cache_parameter_group_family="redis7", description="Hybridsite Redis",
            properties={"maxmemory-policy": "volatile-lru"},
        )
        group = elasticache.CfnReplicationGroup(
            self, "Redis", replication_group_description="Hybridsite cache and broker",
            engine="redis", engine_version="7.1", cache_node_type="cache.t4g.medium", port=REDIS_PORT,
            num_node_groups=1, replicas_per_node_group=1,
            automatic_failover_enabled=True, multi_az_enabled=True,
            transit_encryption_enabled=True, at_rest_encryption_enabled=True,
            auth_token=secret.secret_value.unsafe_unwrap(),  # a dynamic reference, resolved by CloudFormation
            cache_subnet_group_name=subnets.ref, cache_parameter_group_name=parameters.ref,
            security_group_ids=[security_group.security_group_id],
            snapshot_retention_limit=1,
        )
        acknowledge(secret, {"AwsSolutions::AwsSolutions-SMG4": (
            "the AUTH token changes with a rolling deploy (ElastiCache's ROTATE strategy), not on a schedule"
        )})
        return group.attr_primary_end_point_address, secret

    # --- DynamoDB --------------------------------------------------------------------------------

    def _table(self, spec: TableSpec) -> dynamodb.TableV2:
        """A model's table as ``projections_setup`` makes it (keys, indexes, stream, TTL), on
        demand, with point-in-time recovery. Replicas (global tables) need a stream of new and old
        images: a table whose model asks for no stream gets that one."""
        stream = spec.stream_view_type or ("NEW_AND_OLD_IMAGES" if self.config.replica_regions else None)
        if self.config.replica_regions and stream != "NEW_AND_OLD_IMAGES":
            raise ValueError(f"{spec.name}: replicas need a NEW_AND_OLD_IMAGES stream, the model asks for {stream}")
        return dynamodb.TableV2(
            self, "Table" + "".join(part.title() for part in spec.name.split("-")),
            table_name=self.config.table_prefix + spec.name,
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=index.name, partition_key=_attribute(index.partition_key),
                    sort_key=_attribute(index.sort_key) if index.sort_key else None,
                    projection_type=dynamodb.ProjectionType(index.projection),
                    non_key_attributes=list(index.non_key_attributes) or None,
                )
                for index in (
                    *spec.global_indexes, *(i for i in spec.retired_indexes if i.name in self.config.retained_indexes),
                )
            ] or None,
            local_secondary_indexes=[
                dynamodb.LocalSecondaryIndexProps(
                    index_name=index.name, sort_key=_attribute(index.sort_key),  # type: ignore[arg-type]
                    projection_type=dynamodb.ProjectionType(index.projection),
                    non_key_attributes=list(index.non_key_attributes) or None,
                )
                for index in spec.local_indexes
            ] or None,
            billing=dynamodb.Billing.on_demand(),
            dynamo_stream=dynamodb.StreamViewType(stream) if stream else None,
            time_to_live_attribute=spec.ttl_attribute,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True,
            ),
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            replicas=[dynamodb.ReplicaTableProps(region=region) for region in self.config.replica_regions] or None,
        )

    def _resource_arn(self, resource: str) -> str:
        if resource == "*":
            return resource
        kind, name, *rest = resource.split("/")
        if kind == "stream":
            arn = self.tables[name].table_stream_arn
            if arn is None:
                raise ValueError(f"{name} has no stream")
            return arn
        return self.format_arn(
            service="dynamodb", resource="table", resource_name="/".join([self.config.table_prefix + name, *rest]),
        )

    def _task_role(self, role: str, tables: list[TableSpec]) -> iam.Role:
        """The role of one process's tasks, with exactly its lines of ``infra.access``."""
        task_role = iam.Role(
            self, "Role" + "".join(part.title() for part in role.split("-")),
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"Hybridsite {role} tasks",
        )
        grants = access.grants(role, tables)
        if grants:
            policy = iam.Policy(self, f"{role}-tables", statements=[
                iam.PolicyStatement(actions=list(g.actions), resources=[self._resource_arn(r) for r in g.resources])
                for g in grants
            ])
            task_role.attach_inline_policy(policy)
            if any("*" in g.resources for g in grants):
                acknowledge(policy, {"AwsSolutions::AwsSolutions-IAM5[Resource::*]": (
                    "dynamodb:ListTables (the health check) has no resource-level permission"
                )})
        return task_role

    # --- ECS -------------------------------------------------------------------------------------

    def _processes(self) -> list[Process]:
        config = self.config
        ecs_consumer = config.consumer_tasks if config.consumer == "ecs" else 0
        return [
            Process("web", ("gunicorn", "hybridsite.wsgi", "-c", "python:hybridsite.gunicorn_conf",
                            "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-"),
                    count=config.web_tasks, cpu=1024, memory=2048),
            Process("worker", ("celery", "-A", "hybridsite", "worker", "--loglevel", "INFO"),
                    count=config.worker_tasks),
            Process("beat", ("celery", "-A", "hybridsite", "beat", "--loglevel", "INFO",
                             "--schedule", "/tmp/celerybeat-schedule"), count=1, cpu=256, memory=512),
            Process("listener", ("python", "manage.py", "outbox_listen"), count=config.listener_tasks),
            Process("consumer", ("python", "manage.py", "streams_consume"), count=ecs_consumer),
            Process("cache-follower", ("python", "manage.py", "cache_follow"), count=config.cache_follower_tasks),
        ]

    def _task_definition(self, process: Process) -> ecs.FargateTaskDefinition:
        name = "".join(part.title() for part in process.role.split("-"))
        definition = ecs.FargateTaskDefinition(
            self, f"{name}Task", cpu=process.cpu, memory_limit_mib=process.memory, task_role=self.roles[process.role],
        )
        log_group = logs.LogGroup(self, f"{name}Logs", retention=logs.RetentionDays.ONE_MONTH)
        preamble = [_URLS, _PROMETHEUS] + ([_TASK_ADDRESS] if process.role == "web" else [])
        environment = {
            "DYNAMODB_TABLE_PREFIX": self.config.table_prefix, "AWS_REGION": self.region,
            "ALLOWED_HOSTS": self.config.domain_name, "CSRF_TRUSTED_ORIGINS": f"https://{self.config.domain_name}",
            "TRUSTED_PROXY_HOPS": "1", "REDIS_HOST": self.redis_host, "REDIS_PORT": str(REDIS_PORT),
            "OUTBOX_PROJECT_THREADS": str(self.config.relay_threads),
            "PROMETHEUS_MULTIPROC_DIR": "/tmp/prometheus",
        }
        database = self.database.secret
        assert database is not None  # generated credentials
        container = definition.add_container(
            "app", image=self.image, logging=ecs.LogDrivers.aws_logs(stream_prefix=process.role, log_group=log_group),
            entry_point=["sh", "-c", " && ".join(preamble) + ' && exec "$@"', process.role],
            command=list(process.command), environment=environment,
            secrets={
                "DB_USER": ecs.Secret.from_secrets_manager(database, "username"),
                "DB_PASSWORD": ecs.Secret.from_secrets_manager(database, "password"),
                "DB_HOST": ecs.Secret.from_secrets_manager(database, "host"),
                "DB_PORT": ecs.Secret.from_secrets_manager(database, "port"),
                "DB_NAME": ecs.Secret.from_secrets_manager(database, "dbname"),
                "REDIS_AUTH": ecs.Secret.from_secrets_manager(self.redis_secret),
                "SECRET_KEY": ecs.Secret.from_secrets_manager(self.app_secret),
            },
            readonly_root_filesystem=False,
        )
        acknowledge(definition, {
            "AwsSolutions::AwsSolutions-ECS2": (
                "the environment holds settings, not secrets (those come from Secrets Manager): names, counts, hosts"
            ),
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]": (
                "the execution role's ecr:GetAuthorizationToken has no resource-level permission"
            ),
        })
        if process.role == "web":
            container.add_port_mappings(ecs.PortMapping(container_port=8000))
        return definition

    def _service(self, process: Process) -> ecs.FargateService:
        # Beat must never run twice (every schedule would fire twice): a deploy stops it first.
        single = process.role == "beat"
        return ecs.FargateService(
            self, "".join(part.title() for part in process.role.split("-")) + "Service",
            cluster=self.cluster, task_definition=self._task_definition(process), desired_count=process.count,
            vpc_subnets=self._private(), security_groups=[self.app_security_group],
            min_healthy_percent=0 if single else 100, max_healthy_percent=100 if single else 200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )

    def _load_balancer(self, web: ecs.FargateService, certificate_arn: str) -> elbv2.ApplicationLoadBalancer:
        balancer = elbv2.ApplicationLoadBalancer(
            self, "LoadBalancer", vpc=self.vpc, internet_facing=True, drop_invalid_header_fields=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        )
        if self.config.region:  # the log delivery account is the region's: unknown to a region-agnostic template
            bucket = s3.Bucket(
                self, "LoadBalancerLogs", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL, removal_policy=cdk.RemovalPolicy.RETAIN,
                lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(90))],
            )
            acknowledge(bucket, {"AwsSolutions::AwsSolutions-S1": "the access-log bucket does not log itself"})
            balancer.log_access_logs(bucket)
        else:
            acknowledge(balancer, {"AwsSolutions-ELB2": (
                "access logs need the region's log delivery account: deploy with -c region=<region> to have them"
            )})
        https = balancer.add_listener(
            "Https", port=443, certificates=[elbv2.ListenerCertificate.from_arn(certificate_arn)],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
        )
        https.add_targets(
            "Web", port=8000, protocol=elbv2.ApplicationProtocol.HTTP, targets=[web],
            health_check=elbv2.HealthCheck(path="/api/health/", healthy_http_codes="200"),
            deregistration_delay=cdk.Duration.seconds(30),
        )
        balancer.add_redirect(source_port=80, target_port=443)
        acknowledge(balancer, {"AwsSolutions::AwsSolutions-EC23": (
            "the public load balancer takes HTTPS (and HTTP, redirected) from anywhere"
        )})
        web.connections.allow_from(balancer, ec2.Port.tcp(8000), "the load balancer")
        return balancer

    # --- the write-back Lambda -------------------------------------------------------------------

    def _writeback_lambda(self, writeback_tables: list[str]) -> lambda_.Function:
        """``writeback.lambda_handler`` on each write-back table's stream: a failing record is
        reported (``ReportBatchItemFailures``) and retried from, a batch that keeps failing is
        halved until the poisoned record stands alone, and after bounded retries or age its
        batch's description goes to an encrypted queue."""
        config = self.config
        failures = sqs.Queue(
            self, "WritebackFailures", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        dead_letters = "this queue is the dead-letter destination of the streams mapping"
        acknowledge(failures, {
            "AwsSolutions::AwsSolutions-SQS3": dead_letters, "Serverless::Serverless-SQSRedrivePolicy": dead_letters,
        })
        database = self.database.secret
        assert database is not None
        function = lambda_.Function(
            self, "Writeback", runtime=lambda_.Runtime.PYTHON_3_11, architecture=lambda_.Architecture.X86_64,
            handler="lambda_entry.handle", code=self._lambda_code(),
            memory_size=512, timeout=cdk.Duration.seconds(60),
            vpc=self.vpc, vpc_subnets=self._private(), security_groups=[self.app_security_group],
            environment={
                "DB_SECRET_ARN": database.secret_arn, "REDIS_SECRET_ARN": self.redis_secret.secret_arn,
                "APP_SECRET_ARN": self.app_secret.secret_arn, "REDIS_HOST": self.redis_host,
                "REDIS_PORT": str(REDIS_PORT), "DYNAMODB_TABLE_PREFIX": config.table_prefix,
            },
            log_group=logs.LogGroup(self, "WritebackLogs", retention=logs.RetentionDays.ONE_MONTH),
        )
        acknowledge(function, {
            "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]": "writes its own log streams: Lambda's basic role",
            "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaVPCAccessExecutionRole]": "network interfaces in the VPC, to reach Postgres: Lambda's VPC role",
            "AwsSolutions::AwsSolutions-L1": "Python 3.11, the version the app and its wheels are built and tested for",
            "Serverless::Serverless-LambdaLatestVersion": "Python 3.11, the app's version",
            "Serverless::Serverless-LambdaDLQ": (
                "a stream-invoked function has no asynchronous dead-letter queue: the mapping's on-failure "
                "destination (WritebackFailures) takes that place"
            ),
            "Serverless::Serverless-LambdaTracing": "the app carries no X-Ray SDK: its logs and metrics trace it",
        })
        for secret in (database, self.redis_secret, self.app_secret):
            secret.grant_read(function)
        # The mapping's own grants, written here: CDK's would scope ListStreams to a stream, which
        # IAM does not allow (it takes "*" only) and which Lambda's poller then lacks.
        streams = [self._resource_arn(f"stream/{name}") for name in writeback_tables]
        function.add_to_role_policy(iam.PolicyStatement(actions=list(access.STREAM_ACTIONS), resources=streams))
        function.add_to_role_policy(iam.PolicyStatement(actions=["dynamodb:ListStreams"], resources=["*"]))
        acknowledge(function, {"AwsSolutions::AwsSolutions-IAM5[Resource::*]": (
            "dynamodb:ListStreams, which Lambda's stream poller calls, has no resource-level permission"
        )})
        for name, stream in zip(writeback_tables, streams):
            function.add_event_source_mapping(
                "Stream" + "".join(part.title() for part in name.split("-")), event_source_arn=stream,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=config.lambda_batch_size, parallelization_factor=config.lambda_parallelization,
                report_batch_item_failures=True, bisect_batch_on_error=True, retry_attempts=10,
                max_record_age=cdk.Duration.hours(6), on_failure=event_sources.SqsDlq(failures),
                enabled=config.consumer == "lambda",
            )
        self.writeback_failures = failures
        return function

    def _lambda_code(self) -> lambda_.Code:
        if not Path(self.config.lambda_asset).exists():
            raise FileNotFoundError(f"{self.config.lambda_asset}: build the write-back Lambda first (make lambda)")
        return lambda_.Code.from_asset(self.config.lambda_asset)

    def _outputs(self) -> None:
        """What the one-off tasks and the DNS record need (docs/deploy/aws.md)."""
        private = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids
        for name, value in {
            "ClusterName": self.cluster.cluster_name,
            "MigrateTaskDefinitionArn": self.one_off.task_definition_arn,
            "WorkerTaskDefinitionArn": self.services["worker"].task_definition.task_definition_arn,
            "PrivateSubnetIds": cdk.Fn.join(",", private),
            "TaskSecurityGroupId": self.app_security_group.security_group_id,
            "LoadBalancerDnsName": self.load_balancer.load_balancer_dns_name,
            "AlarmTopicArn": self.alarm_topic.topic_arn,
            "WritebackFailureQueueUrl": self.writeback_failures.queue_url,
        }.items():
            cdk.CfnOutput(self, name, value=value)

    # --- alarms ----------------------------------------------------------------------------------

    def _alarm(self, name: str, metric: cloudwatch.IMetric, threshold: float, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self, name, metric=metric, threshold=threshold, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING, alarm_description=description,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))

    def _alarms(self, writeback_tables: list[str]) -> None:
        five_minutes = cdk.Duration.minutes(5)
        for name, table in self.tables.items():
            camel = "".join(part.title() for part in name.split("-"))
            self._alarm(f"Throttles{camel}", cloudwatch.MathExpression(
                expression="reads + writes", period=five_minutes, label=f"{name} throttle events",
                using_metrics={
                    "reads": table.metric("ReadThrottleEvents", statistic="Sum", period=five_minutes),
                    "writes": table.metric("WriteThrottleEvents", statistic="Sum", period=five_minutes),
                },
            ), 0, f"DynamoDB throttled requests on {name}")
            for region in self.config.replica_regions:
                self._alarm(f"Replication{camel}{region.replace('-', '').title()}", cloudwatch.Metric(
                    namespace="AWS/DynamoDB", metric_name="ReplicationLatency", statistic="Average",
                    dimensions_map={"TableName": table.table_name, "ReceivingRegion": region}, period=five_minutes,
                ), 60_000, f"{name} takes over a minute to reach {region}")
        self._alarm("WritebackIteratorAge", self.writeback.metric(
            "IteratorAge", statistic="Maximum", period=cdk.Duration.minutes(1),
        ), 60_000, "the write-back Lambda is over a minute behind its streams")
        self._alarm("WritebackDeadLetters", self.writeback_failures.metric_approximate_number_of_messages_visible(
            period=five_minutes, statistic="Maximum",
        ), 0, "write-back batches gave up: their descriptions are in the failure queue")
        self._alarm("LoadBalancer5xx", self.load_balancer.metrics.http_code_elb(
            elbv2.HttpCodeElb.ELB_5XX_COUNT, period=five_minutes,
        ), 10, "the load balancer answered 5xx (no healthy web task, or timeouts)")
        self._alarm("Web5xx", self.load_balancer.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=five_minutes,
        ), 10, "web tasks answered 5xx")


_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER, "B": dynamodb.AttributeType.BINARY}


def _attribute(key: Key) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_TYPES[key.type])
