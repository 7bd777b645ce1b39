"""Delivery as operators see it: the backlog (from the outbox, so every process reports the
same numbers) and this process's counters, as a /healthz section and Prometheus text."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ivr.delivery.outbox import Backlog
from ivr.delivery.retention import RetentionStats
from ivr.delivery.worker import DeliveryWorker

CONTENT_TYPE = CONTENT_TYPE_LATEST
KINDS = ("callback", "upload")


def health(backlog: Backlog, worker: DeliveryWorker | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pending": backlog.pending, "failed": backlog.failed,
        "oldest_pending_seconds": round(backlog.oldest_pending_seconds, 1),
    }
    if worker is not None:
        body["worker"] = {"running": worker.running, "in_flight": worker.in_flight,
                          "delivered": sum(n for (_, o), n in worker.counts.items()
                                           if o == "delivered"),
                          "failed": sum(n for (_, o), n in worker.counts.items()
                                        if o == "failed")}
        if worker.last_error:
            body["worker"]["last_error"] = worker.last_error
    return body


def exposition(backlog: Backlog, worker: DeliveryWorker | None,
               retention: RetentionStats | None) -> bytes:
    """A registry made per scrape: the values are read, not accumulated, here."""
    registry = CollectorRegistry()
    for state, counts in (("pending", backlog.pending), ("failed", backlog.failed),
                          ("delivered", backlog.delivered)):
        gauge = Gauge(f"ivr_outbox_{state}", f"Outbox rows {state}, by kind", ["kind"],
                      registry=registry)
        for kind in KINDS:
            gauge.labels(kind).set(counts.get(kind, 0))
    Gauge("ivr_outbox_oldest_pending_seconds", "Age of the oldest pending outbox row",
          registry=registry).set(backlog.oldest_pending_seconds)
    deliveries = Counter("ivr_deliveries", "Delivery attempts settled by this process",
                         ["kind", "outcome"], registry=registry)
    upload_bytes = Counter("ivr_upload_bytes", "Bytes of audio uploaded by this process",
                           registry=registry)
    if worker is not None:
        for kind in KINDS:
            for outcome in ("delivered", "retried", "failed"):
                deliveries.labels(kind, outcome).inc(worker.counts[(kind, outcome)])
        upload_bytes.inc(worker.upload_bytes)
    files = Counter("ivr_retention_deleted_files", "Audio files the retention job deleted",
                    registry=registry)
    if retention is not None:
        files.inc(retention.files)
    # Process-wide metrics (key press -> next prompt, the process collectors) live in the
    # default registry.
    return generate_latest(registry) + generate_latest(REGISTRY)
