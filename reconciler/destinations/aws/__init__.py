"""AWS Secrets Manager: the descriptor (SDK-free). The session is ``aws.session``, on boto3."""

from __future__ import annotations

from types import MappingProxyType

from reconciler.destinations.aws import rules
from reconciler.destinations.catalog import Capabilities, Descriptor

DESCRIPTOR = Descriptor(
    id="aws-secrets-manager",
    label="AWS Secrets Manager",
    apps=("aws",),
    schema="destination-aws-secrets-manager.json",
    names=rules.NAMES,
    capabilities=Capabilities(can_import=True, values_readable=True, tags=True, allows_empty=False,
                              max_value_bytes=rules.MAX_VALUE_BYTES, many_to_one=True),
    target=rules.target,
    describe=rules.describe,
    session="reconciler.destinations.aws.session:AwsSecretsManager",
    bundle_name_in_schema=True,
    properties=rules.properties,
    property_problems=rules.property_problems,
    property_names=MappingProxyType(rules.PROPERTY_NAMES),
    rules=rules.spec_findings,
    defaults=MappingProxyType({"syncOptions": MappingProxyType({"recoveryWindowInDays": 30,
                                                                 "syncSecretMetadataAsTags": False})}),
    default_method="default",
)
