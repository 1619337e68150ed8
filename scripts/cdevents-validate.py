#!/usr/bin/env python3
"""Validates CDEvents (JSON files, one event each) against the CDEvents spec's JSON schemas.

usage: cdevents-validate.py SCHEMA_DIR EVENT.json...

SCHEMA_DIR is the `schemas` folder of a checkout of https://github.com/cdevents/spec at the
version the events follow (v0.5.1). Each event is checked against the schema whose
context.type default is the event's type; exits 1 naming every event that fails.
"""
import json
import pathlib
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource


def main() -> int:
    schema_dir = pathlib.Path(sys.argv[1])
    registry = Registry()
    by_type = {}
    for path in sorted(schema_dir.rglob("*.json")):
        schema = json.loads(path.read_text())
        resource = Resource.from_contents(schema)
        registry = registry.with_resource(schema["$id"], resource)
        ty = schema.get("properties", {}).get("context", {}).get("properties", {}).get("type", {}).get("default")
        if ty:
            by_type[ty] = schema
    failed = 0
    for name in sys.argv[2:]:
        event = json.loads(pathlib.Path(name).read_text())
        ty = event["context"]["type"]
        schema = by_type.get(ty)
        if schema is None:
            print(f"{name}: no schema for {ty}")
            failed += 1
            continue
        errors = list(Draft202012Validator(schema, registry=registry).iter_errors(event))
        for e in errors:
            print(f"{name}: {ty}: {e.json_path}: {e.message}")
        failed += bool(errors)
        if not errors:
            print(f"{name}: {ty}: valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
