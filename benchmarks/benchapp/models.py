"""One small table the SQL views read."""

from __future__ import annotations

from typing import ClassVar

from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)
    price = models.IntegerField()

    objects: ClassVar[models.Manager[Item]] = models.Manager()

    def __str__(self) -> str:
        return self.name
