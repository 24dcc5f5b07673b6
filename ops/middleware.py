"""Customer reads timed as the client sees them, by the layer that answered."""

from __future__ import annotations

from time import perf_counter

from projections.readpath import dynamodb_breaker, redis_breaker

from .instruments import BREAKER_OPEN, read_observe

BREAKERS = (redis_breaker, dynamodb_breaker)


class ReadMetricsMiddleware:
    """Records every response that says ``X-Served-From`` (the customer API sets it on each answer,
    errors included), and this process's breaker states when they change: a gauge write per
    request would cost more than the read it measures."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.breaker_states: dict[str, bool] = {}

    def __call__(self, request):
        started = perf_counter()
        response = self.get_response(request)
        served_from = response.headers.get("X-Served-From")
        if served_from is not None:
            read_observe(request.resolver_match.url_name, served_from, response.status_code, perf_counter() - started)
            self._breakers_report()
        return response

    def _breakers_report(self) -> None:
        for breaker in BREAKERS:
            is_open = breaker.is_open
            if self.breaker_states.get(breaker.name) is not is_open:
                BREAKER_OPEN.labels(breaker.name).set(int(is_open))
                self.breaker_states[breaker.name] = is_open
