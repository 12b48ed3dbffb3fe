"""Windmill variables: the descriptor (SDK-free). The session is ``windmill.session``, on httpx."""

from __future__ import annotations

from types import MappingProxyType

from reconciler.destinations.catalog import Capabilities, Descriptor
from reconciler.destinations.windmill import rules

DESCRIPTOR = Descriptor(
    id="windmill",
    label="Windmill",
    apps=("windmill",),
    schema="destination-windmill.json",
    names=rules.NAMES,
    capabilities=Capabilities(can_import=True, values_readable=True, tags=False, allows_empty=True,
                              max_value_bytes=rules.MAX_VALUE_BYTES),
    target=rules.target,
    describe=rules.describe,
    session="reconciler.destinations.windmill.session:WindmillVariables",
    base=rules.base,
    properties=rules.properties,
    property_problems=rules.property_problems,
    property_names=MappingProxyType(rules.PROPERTY_NAMES),
    comment_property=rules.DESCRIPTION,
    default_method="token",
)
