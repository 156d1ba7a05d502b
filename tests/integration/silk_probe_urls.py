"""URLs of tests/integration/silk_probe.py: the demo shop and `/_probe/silk/`."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def silk_state(request: HttpRequest) -> JsonResponse:
    from django.db.models.sql.compiler import SQLCompiler

    import telemetry.silk

    return JsonResponse(
        {
            "in_flight": telemetry.silk.in_flight(),
            "compiler_wrapped": hasattr(SQLCompiler, "_execute_sql"),
        }
    )


urlpatterns = [
    path("_probe/silk/", silk_state),
    path("", include("fleetscope.demo.urls")),
]
