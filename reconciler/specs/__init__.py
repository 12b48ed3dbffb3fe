"""Specs: YAML documents -> JSON Schema + semantic rules -> frozen models.

Entry point: :func:`reconciler.specs.loader.load`. Not re-exported here, so importing the
models does not pull in PyYAML and jsonschema.
"""
