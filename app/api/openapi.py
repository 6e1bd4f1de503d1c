"""The API's description, served at /api/v1/openapi.json; a test checks it against the routes."""

from __future__ import annotations

BEARER = [{"bearer": []}]
ERROR = {"description": "An error in the caller's language: {error, status}"}


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
ASK = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string", "description": "one user message (or `messages`)"},
        "messages": MESSAGES,
        **SAMPLING,
    },
}

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
                        "description": "{model, outcome, text, thinking, error, stats}, or text/event-stream"
                    },
                    "400": ERROR,
                    "401": ERROR,
                    "404": ERROR,
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
                    "200": _json("{answers: [{model, outcome, text, thinking, error, timings, stats}]}"),
                    "400": ERROR,
                    "401": ERROR,
                    "404": ERROR,
                    "503": ERROR,
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
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "200": {
                        "description": "chat.completion, or chat.completion.chunk events ending with [DONE]"
                    },
                    "400": ERROR,
                    "401": ERROR,
                    "404": ERROR,
                    "503": ERROR,
                },
            }
        },
    },
}
