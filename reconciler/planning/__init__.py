"""Planning: pure functions from (desired, observed, inventory) to a Plan, and its renderers."""

from reconciler.planning.options import PlanOptions, in_scope
from reconciler.planning.planner import plan, plan_import, plan_remove
from reconciler.planning.render import PlanError, render_json, render_text

__all__ = [
    "PlanError",
    "PlanOptions",
    "in_scope",
    "plan",
    "plan_import",
    "plan_remove",
    "render_json",
    "render_text",
]
