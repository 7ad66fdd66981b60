"""The sample's one table: a row for each call of /api/db, whose id numbers the visits."""

from __future__ import annotations

from django.db import models


class Visit(models.Model):
    id = models.BigAutoField(primary_key=True)
    visited_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "visits"
