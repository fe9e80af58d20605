"""Spec loading (YAML with marks), the generated JSON Schema and schema validation."""
