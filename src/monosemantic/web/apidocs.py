"""/docs: the OpenAPI schema rendered as a plain page by our own template, so the
API documentation works offline (FastAPI's default /docs loads Swagger UI from a CDN).
The machine-readable schema stays at /openapi.json."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from .pages import render

router = APIRouter(include_in_schema=False)

CONSTRAINTS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "pattern")


def type_of(schema: dict, components: dict) -> str:
    """A short type label: 'integer', 'string | null', 'list of InterventionIn', one of 'a', 'b'."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    if "anyOf" in schema:
        return " | ".join(type_of(s, components) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return "list of " + type_of(schema.get("items", {}), components)
    return schema.get("type", "any")


def constraints(schema: dict) -> str:
    parts = [f"{k} {schema[k]}" for k in CONSTRAINTS if k in schema]
    for alt in schema.get("anyOf", []):
        parts += [f"{k} {alt[k]}" for k in CONSTRAINTS if k in alt]
    if "default" in schema:
        parts.append(f"default {schema['default']!r}")
    return ", ".join(parts)


def fields(schema: dict, components: dict) -> list[dict]:
    required = set(schema.get("required", []))
    return [{"name": name, "type": type_of(s, components), "required": name in required, "constraints": constraints(s),
             "description": s.get("description", "")} for name, s in schema.get("properties", {}).items()]


def operations(spec: dict) -> tuple[list[dict], list[dict]]:
    """-> (operations in path order, the request-body models they use)."""
    components = spec.get("components", {}).get("schemas", {})
    ops, used = [], []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            params = [{"name": p["name"], "in": p["in"], "type": type_of(p.get("schema", {}), components),
                       "required": p.get("required", False), "constraints": constraints(p.get("schema", {}))}
                      for p in op.get("parameters", [])]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            body_name = type_of(body, components) if body else None
            if body_name in components and body_name not in used:
                used.append(body_name)
            ops.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""), "params": params,
                        "body": body_name})
    models = []
    pending = list(used)
    while pending:  # request models and the models they refer to
        name = pending.pop(0)
        flds = fields(components[name], components)
        models.append({"name": name, "fields": flds})
        for s in components[name].get("properties", {}).values():
            for ref in [s.get("$ref")] + [i.get("$ref") for i in (s.get("items", {}), *s.get("anyOf", []))]:
                ref_name = ref.rsplit("/", 1)[-1] if ref else None
                if ref_name in components and ref_name not in used:
                    used.append(ref_name)
                    pending.append(ref_name)
    return ops, models


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request):
    ops, models = operations(request.app.openapi())
    return render(request, "api_docs.html", ops=ops, models=models)
