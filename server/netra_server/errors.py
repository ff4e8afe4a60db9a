"""The error every route raises and the one body every error answers: ``{"error": {"message": ...}}``.

``raise ApiError(status, message)`` in a route (or a dependency); the app's handler
(:func:`netra_server.app.create_app`) answers it with :func:`error_response`.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

__all__ = ["ERROR_SCHEMA_REF", "ApiError", "error_response"]

#: The OpenAPI reference of the error body (:class:`netra_server.wire.ErrorResponse`).
ERROR_SCHEMA_REF = {"$ref": "#/components/schemas/ErrorResponse"}


class ApiError(Exception):
    """Raised in a route: the app answers ``status`` with ``{"error": {"message": message}}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status, headers=headers)


