#!/usr/bin/env python3
"""Renders deploy/kubernetes's Kustomize base and overlays (the subset of Kustomize they use:
resources, labels, images, namespace, JSON 6902 `replace`/`add` patches) and validates every
rendered object with kubernetes-validate against a Kubernetes version, strictly (unknown fields
refused). Exit 0 when all hold; prints each failure and exits 1 otherwise.

Usage: validate_kubernetes.py DIR [--kubernetes-version 1.30.0] [--dump OVERLAY]
(--dump prints that folder's rendered objects as YAML instead.)
"""
import copy
import os
import sys

import kubernetes_validate
import yaml

NAMESPACED = {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap", "Secret", "ServiceMonitor"}
# Custom resources kubernetes-validate has no schema for, checked by shape here.
CUSTOM = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def check_custom(o, objs):
    """A ServiceMonitor must select Services that have the port each endpoint names."""
    selector = o["spec"]["selector"]["matchLabels"]
    services = [s for s in objs if s["kind"] == "Service"
                and selector.items() <= s["metadata"].get("labels", {}).items()]
    if not services:
        raise ValueError("selects no Service")
    for e in o["spec"]["endpoints"]:
        for s in services:
            if e["port"] not in [p.get("name") for p in s["spec"]["ports"]]:
                raise ValueError(f"Service {s['metadata']['name']} has no port {e['port']}")


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def pointer(path):
    return [p.replace("~1", "/").replace("~0", "~") for p in path.strip("/").split("/")]


def apply_patch(obj, ops):
    for op in ops:
        parts = pointer(op["path"])
        parent = obj
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if op["op"] not in ("replace", "add"):
            raise SystemExit(f"unsupported patch op {op['op']}")
        if isinstance(parent, list):
            parent[int(last)] = copy.deepcopy(op["value"])
        else:
            if op["op"] == "replace" and last not in parent:
                raise SystemExit(f"replace of a missing {op['path']}")
            parent[last] = copy.deepcopy(op["value"])


def render(folder):
    k = load(os.path.join(folder, "kustomization.yaml"))[0]
    objs = []
    for r in k.get("resources", []):
        p = os.path.join(folder, r)
        objs += render(p) if os.path.isdir(p) else load(p)
    for entry in k.get("labels", []):
        for o in objs:
            o.setdefault("metadata", {}).setdefault("labels", {}).update(entry.get("pairs", {}))
    for img in k.get("images", []):
        for o in objs:
            for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                name, _, _ = c["image"].partition(":")
                base = name.rsplit("/", 1)[-1]
                if name == img["name"] or base == img["name"].rsplit("/", 1)[-1]:
                    c["image"] = f"{img.get('newName', name)}:{img.get('newTag', 'latest')}"
    if "namespace" in k:
        for o in objs:
            if o["kind"] in NAMESPACED:
                o["metadata"]["namespace"] = k["namespace"]
    for p in k.get("patches", []):
        target = p["target"]
        ops = load(os.path.join(folder, p["path"]))[0]
        hits = [o for o in objs if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]]
        if not hits:
            raise SystemExit(f"{folder}: patch target {target} matches nothing")
        for o in hits:
            apply_patch(o, ops)
    return objs


def main():
    args = sys.argv[1:]
    version = "1.30.0"
    if "--kubernetes-version" in args:
        i = args.index("--kubernetes-version")
        version = args[i + 1]
        del args[i:i + 2]
    if "--dump" in args:
        i = args.index("--dump")
        folder = args[i + 1]
        print(yaml.safe_dump_all(render(folder), sort_keys=True))
        return
    root = args[0]
    folders = [os.path.join(root, "base")] + [
        os.path.join(root, "overlays", d) for d in sorted(os.listdir(os.path.join(root, "overlays")))
    ]
    failed = 0
    for folder in folders:
        objs = render(folder)
        for o in objs:
            what = f"{folder}: {o['kind']}/{o['metadata']['name']}"
            try:
                if (o["apiVersion"], o["kind"]) in CUSTOM:
                    check_custom(o, objs)
                    continue
                kubernetes_validate.validate(o, version, strict=True)
            except Exception as e:  # every kind of refusal is reported the same way
                failed += 1
                print(f"INVALID {what}: {getattr(e, 'message', e)}")
        print(f"{folder}: {len(objs)} objects rendered and checked against Kubernetes {version}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
