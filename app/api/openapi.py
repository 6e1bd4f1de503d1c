"""The API's description, served at /api/v1/openapi.json; a test checks it against the routes."""

from __future__ import annotations

BEARER = [{"bearer": []}]
ERROR = {"description": "An error in the caller's language: {error, status}"}
# The admin keeps some models for groups (app.accounts.access): the others are not listed, and
# asking one is refused, the same on every route.
MODEL_KEPT = {"description": "The model is kept for groups the caller is not in: {error, status: 403}"}
OVER_QUOTA = {
    "description": "The caller's answers at once are taken (Retry-After: when one should end), or their "
    "day's answers or tokens are used: {error, status, code: quota_exceeded, quota: answers|tokens, "
    "resets_at} with Retry-After: the seconds until the quota is given back (the server's midnight). "
    "An answer that reaches the tokens quota while it is written stops there: outcome `stopped`, the "
    "text kept, `error` saying so. See GET /api/v1/quota"
}


def _json(description: str, schema: dict | None = None) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


SAMPLING = {
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0.01, "maximum": 1},
    "top_k": {"type": "integer", "minimum": 1, "maximum": 200},
    "max_tokens": {
        "type": "integer",
        "minimum": 16,
        "description": "at most the admin's limit for the model",
    },
    "seed": {"type": "integer"},
}
MESSAGES = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {"role": {"enum": ["system", "user", "assistant"]}, "content": {"type": "string"}},
    },
}
DOCUMENTS = {
    "collections": {
        "type": "array",
        "maxItems": 20,
        "items": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        "description": "collections (ids or names, from /api/v1/collections) whose passages the answer "
        "draws on, found before answering as in the chat; one the caller may not read is answered "
        "404, as unknown",
    },
    "document_ids": {
        "type": "array",
        "maxItems": 20,
        "items": {"type": "integer"},
        "description": "the caller's own documents (POST /api/v1/documents): waited for while they are "
        "indexed, sent whole when they fit the model's budget, else searched",
    },
}
SOURCES = (
    "`sources`: the passages the answer was given, numbered as it cites them ([1]): "
    "{passages: [{n, document_id, name, page, heading, text}], read: {passages, pages, documents, whole}}; "
    "{} when it drew on no document"
)
ASK = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string", "description": "one user message (or `messages`)"},
        "messages": MESSAGES,
        **SAMPLING,
        **DOCUMENTS,
    },
}
DOCUMENT = _json(
    "{document: {id, name, kind, size_bytes, state (waiting, indexing, ready, error), pages, chunks, "
    "error, collection_id, url}}"
)
UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        }
    },
}


def _id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _page(name: str, largest: int) -> dict:
    return {"name": name, "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": largest}}


SPEC = {
    "openapi": "3.1.0",
    "info": {
        "title": "Causerie API",
        "version": "1",
        "description": "Keys are made on the Settings page; send `Authorization: Bearer <key>`. "
        "The session cookie is never accepted here.",
    },
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": BEARER,
    "paths": {
        "/api/v1/openapi.json": {
            "get": {"summary": "This description", "security": [], "responses": {"200": _json("OpenAPI 3.1")}}
        },
        "/api/v1/models": {
            "get": {
                "summary": "The models offered to users, the default first",
                "responses": {"200": _json("{default, models}"), "401": ERROR},
            }
        },
        "/api/v1/health": {
            "get": {
                "summary": "Engines reachable, models loaded, answers under way",
                "responses": {"200": _json("{ok, engines, loaded, answers_under_way}"), "401": ERROR},
            }
        },
        "/api/v1/generate": {
            "post": {
                "summary": "One answer, whole or streamed as the chat's Server-Sent Events (`stream: true`)",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                **ASK,
                                "required": ["model"],
                                "properties": {
                                    **ASK["properties"],
                                    "model": {"type": "string"},
                                    "stream": {"type": "boolean"},
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "200": {
                        "description": "{model, outcome, text, thinking, error, stats, sources}, or "
                        "text/event-stream (a `sources` event before the first token). " + SOURCES
                    },
                    "400": ERROR,
                    "401": ERROR,
                    "403": MODEL_KEPT,
                    "404": ERROR,
                    "429": OVER_QUOTA,
                    "503": ERROR,
                },
            }
        },
        "/api/v1/compare": {
            "post": {
                "summary": "One prompt, 1 to 4 models: every answer with its timings",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                **ASK,
                                "required": ["models"],
                                "properties": {
                                    **ASK["properties"],
                                    "models": {
                                        "type": "array",
                                        "items": {"type": "string"},
                                        "minItems": 1,
                                        "maxItems": 4,
                                    },
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "200": _json(
                        "{answers: [{model, outcome, text, thinking, error, timings, stats, sources}]}. "
                        + SOURCES
                    ),
                    "400": ERROR,
                    "401": ERROR,
                    "403": MODEL_KEPT,
                    "404": ERROR,
                    "429": OVER_QUOTA,
                    "503": ERROR,
                },
            }
        },
        "/api/v1/quota": {
            "get": {
                "summary": "The caller's quotas and what is left of today's (the chat, the compare page and "
                "every key of the same person share them)",
                "responses": {
                    "200": _json(
                        "{answers_per_day, tokens_per_day, answers_at_once (null: no limit), answers_used, "
                        "tokens_used (generated tokens, thinking included; the prompt's are not counted), "
                        "answers_left, tokens_left (null: no limit), resets_at (ISO 8601, UTC: the server's "
                        "next midnight), summary (a sentence in the caller's language, empty without a "
                        "daily limit)}"
                    ),
                    "401": ERROR,
                },
            }
        },
        "/api/v1/conversations": {
            "get": {
                "summary": "The caller's conversations, newest first",
                "responses": {"200": _json("{conversations}"), "401": ERROR},
            }
        },
        "/api/v1/conversations/{conversation_id}": {
            "get": {
                "summary": "One of the caller's conversations: every message and the branch shown",
                "parameters": [
                    {"name": "conversation_id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {"200": _json("{conversation, messages, thread}"), "401": ERROR, "404": ERROR},
            }
        },
        "/api/v1/documents": {
            "get": {
                "summary": "The caller's documents and those of the collections they may read, newest first",
                "parameters": [_page("page", 100_000), _page("per_page", 100)],
                "responses": {
                    "200": _json("{documents: [document], page, per_page, total}"),
                    "400": ERROR,
                    "401": ERROR,
                },
            },
            "post": {
                "summary": "Upload a document (PDF, DOCX, PPTX, XLSX, ODT, TXT, Markdown, HTML, CSV); "
                "indexed in the background: follow its `state`, then name it in `document_ids`",
                "requestBody": UPLOAD,
                "responses": {"201": DOCUMENT, "400": ERROR, "401": ERROR, "413": ERROR},
            },
        },
        "/api/v1/documents/{document_id}": {
            "get": {
                "summary": "One document: its state and progress",
                "parameters": [_id("document_id")],
                "responses": {"200": DOCUMENT, "401": ERROR, "404": ERROR},
            },
            "delete": {
                "summary": "Remove one of the caller's documents (a collection's: its page)",
                "parameters": [_id("document_id")],
                "responses": {"204": {"description": "Removed"}, "401": ERROR, "404": ERROR},
            },
        },
        "/api/v1/collections": {
            "get": {
                "summary": "The collections the caller may name in `collections`",
                "responses": {
                    "200": _json("{collections: [{id, name, description, documents}]}"),
                    "401": ERROR,
                },
            }
        },
        "/api/v1/collections/{collection_id}/documents": {
            "post": {
                "summary": "Upload a document into a collection (its managers only)",
                "parameters": [_id("collection_id")],
                "requestBody": UPLOAD,
                "responses": {"201": DOCUMENT, "400": ERROR, "401": ERROR, "404": ERROR, "413": ERROR},
            }
        },
        "/v1/models": {
            "get": {
                "summary": "OpenAI-compatible: the models offered",
                "responses": {"200": _json("{object: list, data}"), "401": ERROR},
            }
        },
        "/v1/chat/completions": {
            "post": {
                "summary": "OpenAI-compatible chat completion, streamed (`stream: true`) or not",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["model", "messages"],
                                "properties": {
                                    "model": {"type": "string"},
                                    "messages": MESSAGES,
                                    "stream": {"type": "boolean"},
                                    "max_completion_tokens": {"type": "integer"},
                                    **SAMPLING,
                                    **DOCUMENTS,
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "200": {
                        "description": "chat.completion, or chat.completion.chunk events ending with "
                        "[DONE]. Naming `collections` or `document_ids` adds a top-level field, our "
                        "extension (OpenAI's clients ignore it; the Python client reads it as "
                        "`completion.model_extra['sources']`): on the completion, and on a chunk of its "
                        "own before the first token when streamed. " + SOURCES
                    },
                    "400": ERROR,
                    "401": ERROR,
                    "403": MODEL_KEPT,
                    "404": ERROR,
                    "429": OVER_QUOTA,
                    "503": ERROR,
                },
            }
        },
    },
}
