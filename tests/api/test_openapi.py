#!/usr/bin/env python3
"""docs/openapi.yaml describes the API that exists: its paths and methods
are exactly the routes of gateway/api/routes.c (printed by routes_dump),
every operation has responses, every error response is the shared Error
schema, every $ref resolves, and every operation but login names its
security (a change: the bearer header only, as the session cookie only
reads).

usage: test_openapi.py ROUTES_DUMP OPENAPI_YAML"""
import subprocess
import sys

import yaml

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
PUBLIC = {("POST", "/api/v1/login")}


def refs(node):
    """Every $ref string anywhere under node."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def resolve(doc, ref):
    assert ref.startswith("#/"), "only local references: %s" % ref
    node = doc
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, "unresolved $ref %s" % ref
        node = node[part]
    return node


def deref(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(doc, node["$ref"])
    return node


def main(dump, spec_path):
    out = subprocess.run([dump], check=True, capture_output=True, text=True, timeout=30).stdout
    routes = set()
    for line in out.splitlines():
        method, pattern = line.split(" ", 1)
        assert pattern.startswith("/api/v1/"), line
        assert (method, pattern) not in routes, "route twice in the table: %s" % line
        routes.add((method, pattern))
    assert len(routes) >= 20, "routes_dump printed only %d routes" % len(routes)

    with open(spec_path) as f:
        doc = yaml.safe_load(f)
    problems = []
    assert doc.get("openapi") == "3.0.3", doc.get("openapi")
    base = doc["servers"][0]["url"].rstrip("/")
    assert base == "/api/v1", base
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["cookieAuth"]["in"] == "cookie"
    assert schemes["cookieAuth"]["name"] == "pitstop_session"
    for ref in set(refs(doc)):
        resolve(doc, ref)

    described = set()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            key = (method.upper(), base + path)
            described.add(key)
            where = "%s %s" % key
            responses = op.get("responses") or {}
            if not responses:
                problems.append("%s: no responses" % where)
            for code, resp in responses.items():
                resp = deref(doc, resp)
                if not resp.get("description"):
                    problems.append("%s %s: no description" % (where, code))
                if str(code)[0] in "45":
                    schema = resp.get("content", {}).get("application/json", {}).get("schema")
                    if schema != {"$ref": "#/components/schemas/Error"}:
                        problems.append("%s %s: not the Error schema" % (where, code))
            # Path parameters: each {x} of the path declared, and no other.
            declared = {deref(doc, p)["name"] for p in op.get("parameters", [])
                        if deref(doc, p)["in"] == "path"}
            in_path = {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}
            if declared != in_path:
                problems.append("%s: path parameters %s, declared %s" % (where, in_path, declared))
            sec = op.get("security")
            if key in PUBLIC:
                if sec != []:
                    problems.append("%s: public, so security: []" % where)
                continue
            if not sec:
                problems.append("%s: no security" % where)
                continue
            names = {n for req in sec for n in req}
            if "bearerAuth" not in names:
                problems.append("%s: bearerAuth missing" % where)
            if key[0] != "GET" and "cookieAuth" in names:
                problems.append("%s: a change with the cookie alone is refused (401)" % where)
            if "401" not in responses:
                problems.append("%s: no 401 response" % where)

    for key in sorted(routes - described):
        problems.append("route %s %s is not in %s" % (key[0], key[1], spec_path))
    for key in sorted(described - routes):
        problems.append("%s %s is described but no such route exists" % key)
    if problems:
        print("\n".join(problems))
        print("0 passed, 1 failed")
        return 1
    print("%d routes, all described; 1 passed, 0 failed" % len(routes))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
