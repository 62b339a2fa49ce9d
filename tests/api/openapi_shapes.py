"""Checks a real reply against docs/openapi.yaml: the schema of the
operation's response for that status, with the subset of OpenAPI 3.0 the
document uses ($ref, allOf, type, nullable, properties, required,
additionalProperties, items, enum). Used by tests/integration/test_api.py
so that the description says what the gateway really sends."""
import os

import yaml

TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool,
    "integer": int, "number": (int, float),
}


class Spec:
    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.base = self.doc["servers"][0]["url"].rstrip("/")

    def deref(self, node):
        out = node
        while isinstance(out, dict) and "$ref" in out:
            target = self.doc
            for part in out["$ref"][2:].split("/"):
                target = target[part]
            out = target
        return out

    def errors(self, schema, value, where="$"):
        """The ways value does not fit schema (empty: it fits)."""
        s = self.deref(schema)
        out = []
        for sub in s.get("allOf", []):
            out += self.errors(sub, value, where)
        if value is None:
            if "type" in s and not s.get("nullable") and not self._nullable_all(s):
                out.append("%s: null where %s is expected" % (where, s["type"]))
            return out
        t = s.get("type")
        if t:
            ok = isinstance(value, TYPES[t]) and not (t in ("integer", "number")
                                                      and isinstance(value, bool))
            if not ok:
                return out + ["%s: %r is not %s" % (where, value, t)]
        if "enum" in s and value not in s["enum"]:
            out.append("%s: %r not in %s" % (where, value, s["enum"]))
        if isinstance(value, dict):
            props = self._props(s)
            for k in self._required(s):
                if k not in value:
                    out.append("%s: %s missing" % (where, k))
            for k, v in value.items():
                if k in props:
                    out += self.errors(props[k], v, where + "." + k)
                elif isinstance(s.get("additionalProperties"), dict):
                    out += self.errors(s["additionalProperties"], v, where + "." + k)
                elif s.get("additionalProperties") is False:
                    out.append("%s: %s is not in the description" % (where, k))
        if isinstance(value, list) and "items" in s:
            for i, v in enumerate(value):
                out += self.errors(s["items"], v, "%s[%d]" % (where, i))
        return out

    def _nullable_all(self, s):
        return any(self.deref(x).get("nullable") for x in s.get("allOf", []))

    def _props(self, s):
        props = dict(s.get("properties", {}))
        for sub in s.get("allOf", []):
            props.update(self._props(self.deref(sub)))
        return props

    def _required(self, s):
        req = list(s.get("required", []))
        for sub in s.get("allOf", []):
            req += self._required(self.deref(sub))
        return req

    def response_schema(self, method, pattern, status):
        """The JSON schema of pattern's method reply with status; fails when
        the description has no such reply."""
        path = pattern[len(self.base):] if pattern.startswith(self.base) else pattern
        op = self.doc["paths"][path][method.lower()]
        resp = op["responses"].get(str(status))
        assert resp is not None, "%s %s: %s is not a described reply" % (method, pattern, status)
        resp = self.deref(resp)
        return resp.get("content", {}).get("application/json", {}).get("schema")

    def check(self, method, pattern, status, body):
        """Asserts body is what the description says pattern's method
        replies with status; returns body."""
        schema = self.response_schema(method, pattern, status)
        if schema is None:
            assert body is None, "%s %s %s: no body described, got %r" % (
                method, pattern, status, body)
            return body
        errs = self.errors(schema, body)
        assert not errs, "%s %s %s does not fit docs/openapi.yaml: %s" % (
            method, pattern, status, "; ".join(errs[:8]))
        return body


def load(source_dir):
    return Spec(os.path.join(source_dir, "docs", "openapi.yaml"))
