"""OpenAI's error bodies: the errors the endpoint answers, and the ones a test can inject."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["APIError", "injected_error", "invalid"]


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        err_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": err_type, "param": param, "code": code}}
        self.headers = dict(headers or {})


def invalid(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, "invalid_request_error", code, param)


def injected_error(status: int) -> APIError:
    if status == 401:
        return APIError(401, "Incorrect API key provided.", code="invalid_api_key")
    if status == 403:
        return APIError(403, "You are not allowed to sample from this model", code="model_not_allowed")
    if status == 404:
        return APIError(
            404, "The model does not exist or you do not have access to it.", code="model_not_found"
        )
    if status == 429:
        return APIError(
            429,
            "Rate limit reached for requests. Please try again in 1s.",
            "requests",
            "rate_limit_exceeded",
            headers={"retry-after": "1"},
        )
    if status == 503:
        return APIError(503, "The engine is currently overloaded, please try again later.", "server_error")
    if status >= 500:
        return APIError(
            status, "The server had an error while processing your request. Sorry about that!", "server_error"
        )
    return invalid("Injected invalid request (x-fake-openai-error).")
