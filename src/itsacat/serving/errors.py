"""Every error the prediction service returns, each defined once: code, HTTP status, wording.

A route raises `SOME_KIND.error(field=value)`. The app turns any `ItsacatError` (these and the
data package's `ImageError`) into a JSON body `{"error": code, "detail": message}` with the
error's status, so one failure always gets the same status and wording.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import JSONResponse

from itsacat.errors import ItsacatError


class ServingError(ItsacatError):
    """A request the service cannot serve as sent; the message says what to do instead."""

    def __init__(self, code: str, message: str, http_status: int):
        super().__init__(code, message)
        self.http_status = http_status


@dataclass(frozen=True)
class ErrorKind:
    """One kind of failure: its machine-readable code, HTTP status and message template."""

    code: str
    http_status: int
    template: str

    def error(self, **fields: object) -> ServingError:
        """Build the error with the template's fields filled in."""
        return ServingError(self.code, self.template.format(**fields), self.http_status)


def error_response(error: ItsacatError) -> JSONResponse:
    """Render an error as the service's JSON body `{"error": code, "detail": message}`."""
    return JSONResponse({"error": error.code, "detail": error.message},
                        status_code=error.http_status)


# Request bodies.
BODY_TOO_LARGE = ErrorKind(
    "body_too_large", 413,
    "the request body is over the limit of {limit:,} bytes; send a smaller picture or raise "
    "ITSACAT_MAX_BODY_BYTES (--max-body-bytes)")
MISSING_IMAGE = ErrorKind(
    "missing_image", 400,
    "{where}; send the picture as a multipart file field named 'file', as the raw request "
    "body, or as JSON {{\"url\": \"https://…\"}}")
INVALID_JSON = ErrorKind(
    "invalid_json", 400, "the JSON body cannot be read ({reason}); send {{\"url\": \"https://…\"}}")
INVALID_REQUEST = ErrorKind("invalid_request", 422, "{reason}")
ROUTE_NOT_FOUND = ErrorKind(
    "not_found", 404, "{method} {path} is not a route of this service; see /docs")
METHOD_NOT_ALLOWED = ErrorKind(
    "method_not_allowed", 405, "{method} is not allowed on {path}; see /docs")

# The served model.
MODEL_NOT_READY = ErrorKind(
    "model_not_ready", 503,
    "slot {slot} has no verified model loaded yet; retry once /readyz returns 200")

# URL fetches.
URL_INVALID = ErrorKind("url_invalid", 400, "{url!r} is not a valid URL ({reason})")
URL_SCHEME_NOT_ALLOWED = ErrorKind(
    "url_scheme_not_allowed", 400,
    "{url}: the scheme {scheme!r} is not allowed; use an http or https URL")
URL_CREDENTIALS_NOT_ALLOWED = ErrorKind(
    "url_credentials_not_allowed", 400,
    "{url}: URLs with a user name or password are not fetched; remove the credentials")
ADDRESS_NOT_ALLOWED = ErrorKind(
    "address_not_allowed", 400,
    "{url}: {target} is {kind}, which the service does not fetch from; "
    "to allow it on purpose, add it to ITSACAT_FETCH_ALLOW (--fetch-allow)")
HOST_NOT_FOUND = ErrorKind("host_not_found", 400, "{url}: the host {host} cannot be resolved")
TOO_MANY_REDIRECTS = ErrorKind(
    "too_many_redirects", 400,
    "{url}: more than {limit} redirects; give the final URL of the picture")
FETCH_TIMED_OUT = ErrorKind(
    "fetch_timed_out", 400,
    "{url}: the fetch timed out after {seconds:g} s ({phase}); give a faster URL or upload "
    "the picture")
REMOTE_TOO_LARGE = ErrorKind(
    "remote_too_large", 413,
    "{url}: the response is over the limit of {limit:,} bytes; give a smaller picture")
FETCH_FAILED = ErrorKind("fetch_failed", 400, "{url}: the fetch failed ({reason})")
