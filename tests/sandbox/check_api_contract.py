"""The sandbox refuses, as AWS does, requests that break the service's published API model, in
each protocol mldeploy speaks (JSON, query, EC2, REST-XML), and still serves the ones that keep
to it. Sent with boto3 with its own parameter validation off, so the requests reach the server
as a client that does not validate (the AWS SDK for Rust does not check enums, ranges, lengths
or patterns) would send them. Prints a line per check; exit 1 if any fails.
"""

import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

RAW = Config(parameter_validation=False, retries={"max_attempts": 1})
failed = 0


def client(name):
    return boto3.client(name, config=RAW)


def refused(what, call, code, says):
    global failed
    try:
        call()
    except ClientError as e:
        got = e.response["Error"]
        if got.get("Code") == code and says in got.get("Message", ""):
            print(f"ok   {what}: {code}: {got['Message']}")
            return
        print(f"FAIL {what}: expected {code} saying {says!r}, got {got}")
        failed += 1
        return
    print(f"FAIL {what}: accepted")
    failed += 1


def served(what, call):
    global failed
    try:
        call()
        print(f"ok   {what}: served")
    except ClientError as e:
        print(f"FAIL {what}: refused: {e}")
        failed += 1


def extra_param(ec2, operation, name, value):
    """Adds a parameter the operation does not have to the request's form before it is signed."""

    def add(params, **_):
        params["body"][name] = value

    ec2.meta.events.register(f"before-call.ec2.{operation}", add)


ecs = client("ecs")
served("JSON: ListClusters", lambda: ecs.list_clusters())
refused(
    "JSON: a value outside an enum",
    lambda: ecs.list_tasks(desiredStatus="SLEEPING"),
    "ValidationException",
    "Value 'SLEEPING' at 'desiredStatus' failed to satisfy constraint: Member must satisfy enum value set: [RUNNING, PENDING, STOPPED]",
)
refused(
    "JSON: a required member left out",
    lambda: ecs.register_task_definition(containerDefinitions=[]),
    "ValidationException",
    "Value null at 'family' failed to satisfy constraint: Member must not be null",
)

logs = client("logs")
refused(
    "JSON: a string longer than its maximum",
    lambda: logs.create_log_group(logGroupName="/ecs/" + "x" * 600),
    "ValidationException",
    "Member must have length less than or equal to 512",
)

elbv2 = client("elbv2")
served("query: DescribeLoadBalancers", lambda: elbv2.describe_load_balancers())
refused(
    "query: a value outside an enum",
    lambda: elbv2.create_target_group(Name="contract", Protocol="HTTPX", Port=80, VpcId="vpc-1"),
    "ValidationError",
    "Value 'HTTPX' at 'protocol' failed to satisfy constraint: Member must satisfy enum value set",
)
refused(
    "query: a number out of range",
    lambda: elbv2.create_target_group(Name="contract", Protocol="HTTP", Port=80, VpcId="vpc-1", HealthCheckIntervalSeconds=1),
    "ValidationError",
    "Member must have value greater than or equal to 5",
)
iam = client("iam")
refused(
    "query: a string that breaks its pattern",
    lambda: iam.create_role(RoleName="no spaces allowed", AssumeRolePolicyDocument="{}"),
    "ValidationError",
    "Member must satisfy regular expression pattern",
)

ec2 = client("ec2")
served("EC2: DescribeVpcs", lambda: ec2.describe_vpcs())
refused(
    "EC2: a required parameter left out",
    lambda: ec2.delete_vpc(),
    "MissingParameter",
    "The request must contain the parameter VpcId",
)
refused(
    "EC2: a number out of range",
    lambda: ec2.describe_vpcs(MaxResults=2),
    "InvalidParameterValue",
    "Member must have value greater than or equal to 5",
)
unknown = client("ec2")
extra_param(unknown, "DescribeSubnets", "Colour", "blue")
refused(
    "EC2: a parameter the API does not have",
    lambda: unknown.describe_subnets(),
    "UnknownParameter",
    "The parameter Colour is not recognized",
)

route53 = client("route53")
served("REST-XML: ListHostedZones", lambda: route53.list_hosted_zones())
refused(
    "REST-XML: a path member longer than its maximum",
    lambda: route53.get_hosted_zone(Id="Z" * 40),
    "InvalidInput",
    "Member must have length less than or equal to 32",
)
refused(
    "REST-XML: a body member outside an enum",
    lambda: route53.change_resource_record_sets(
        HostedZoneId="Z0123456789",
        ChangeBatch={"Changes": [{"Action": "REPLACE", "ResourceRecordSet": {"Name": "a.example.com", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "127.0.0.1"}]}}]},
    ),
    "InvalidInput",
    "Value 'REPLACE' at 'changeBatch.changes.1.member.action' failed to satisfy constraint: Member must satisfy enum value set: [CREATE, DELETE, UPSERT]",
)

print(f"{'FAILED' if failed else 'passed'}: {failed} check(s) failed")
sys.exit(1 if failed else 0)
