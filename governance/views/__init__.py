"""The project's pages: the probes (``probes``), the governance overview and the event log's
pages (``events``), the readiness dashboard (``readiness``) and the home page (``home``). The waiver pages are the
reviews floor's (``reviews.waivers.views``)."""

from governance.views.events import (
    FEED_PAGE_SIZE,
    event_detail,
    event_feed,
    governance_index,
    metrics_page,
    verification_detail,
    verify_start,
)
from governance.views.home import favicon, home
from governance.views.probes import healthz, readyz
from governance.views.readiness import readiness_page

__all__ = [
    "FEED_PAGE_SIZE",
    "event_detail",
    "event_feed",
    "favicon",
    "governance_index",
    "healthz",
    "home",
    "metrics_page",
    "readiness_page",
    "readyz",
    "verification_detail",
    "verify_start",
]
