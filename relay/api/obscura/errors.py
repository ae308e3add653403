"""The Obscura error convention, the application's default: ``{"error": message}`` with
the error's status (:mod:`relay.errors`), empty 404 / 405 bodies as the reference's
router answers, 503 with ``Retry-After`` when the database is unreachable. The other
faces register their own on their blueprints."""

from __future__ import annotations

import logging

from quart import Response
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from relay.api.http import Rejection, empty_response, error_response
from relay.api.outages import unavailable
from relay.errors import RelayError, ServiceUnavailable
from storage.errors import StorageUnavailable

log = logging.getLogger("relay.api")


def register_error_handlers(app: QuartTrio) -> None:
    """Translate errors nothing else handled."""

    @app.errorhandler(RelayError)
    async def relay_error(error: RelayError) -> Response:
        return error_response(error)

    @app.errorhandler(Rejection)
    async def rejection(error: Rejection) -> Response:
        return error.response()

    @app.errorhandler(HTTPException)
    async def http_exception(error: HTTPException) -> Response:
        # Routing misses (404) and wrong methods (405) have empty bodies.
        response = empty_response(error.code or 500)
        for name, value in error.get_headers():
            if name.lower() == "allow":
                response.headers[name] = value
        return response

    @app.errorhandler(StorageUnavailable)
    async def storage_unavailable(error: StorageUnavailable) -> Response:
        response = error_response(ServiceUnavailable())
        response.headers.update(unavailable(error))
        return response

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        log.error("unhandled error", exc_info=error)
        return error_response(RelayError())
