"""Hanzo KMS as the source catalog sees it (SDK-free: the HTTP client loads only on open).

A KMS folder cannot be watched, so the daemon learns of changes the two ways the server
allows: a cheap poll of each folder's change token, and signed "secrets modified" webhooks
that name the folder (``POST /webhooks/kms/<connection>``, the documented route).
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.model import Folder, SecretValue
from reconciler.sources.catalog import Polling, SourceDescriptor, Webhooks


def changed_folder(body: bytes, headers: Mapping[str, str], secret: SecretValue) -> Folder:
    """The webhook parser, imported when a webhook arrives (validating specs needs none)."""
    from reconciler.sources import webhook

    return webhook.changed_folder(body, headers, secret)


DESCRIPTOR = SourceDescriptor(
    app="kms",
    label="Hanzo KMS",
    open="reconciler.sources.kms:open_connection",
    needs_project=True,
    recursive=True,
    polling=Polling(default_seconds=60.0, setting="pollInterval"),
    webhooks=Webhooks(route="kms", verify=changed_folder, signed_with="webhookSecret"),
)
