"""The therapist's dashboard: a local web page with the live rupture indicator.

``Dashboard(host=..., port=..., token=..., on_annotation=..., title=...)`` serves the
page from a daemon thread; the pipeline calls :meth:`Dashboard.publish` for every
event. The page, its script and its style ship in ``static/``: nothing is fetched
from the network.
"""

from session_monitor.dashboard.server import ANNOTATION_LABELS, Dashboard, is_loopback, new_token

__all__ = ["ANNOTATION_LABELS", "Dashboard", "is_loopback", "new_token"]
