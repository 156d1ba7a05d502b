"""Views measured by the benchmark."""

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from .models import Item


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")


def _ten_queries() -> int:
    total = 0
    for pk in range(1, 11):
        item = Item.objects.filter(pk=pk).first()
        total += item.price if item else 0
    return total


def sql(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(_ten_queries()))


def mixed(request: HttpRequest) -> HttpResponse:
    """10 SQL queries and 2 cache calls, the issue's reference view."""
    cache.set("bench", 1)
    value = cache.get("bench")
    return HttpResponse(str(_ten_queries() + value))
