"""The local secrets file as the source catalog sees it: one YAML file, named by ``path``
(resolved against the spec that names it) and watched by the daemon."""

from __future__ import annotations

from reconciler.sources.catalog import SourceDescriptor

DESCRIPTOR = SourceDescriptor(
    app="file",
    label="local secrets file",
    open="reconciler.sources.file:open_connection",
    local_file="path",
)
