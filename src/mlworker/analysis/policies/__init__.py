"""Contact-policy analysis: how often to contact customers, on which channel, and when.

``analyze_policies(frame, PolicyConfig(...))`` reads an interaction history (one row per
contact with its outcome), measures each contact's trailing daily, weekly and monthly
frequency, relates response to frequency, channel, day, hour and time since the previous
contact, and proposes frequency caps and a cooldown as draft contact policies.

Modules: ``config`` (parameters), ``columns``, ``timestamps`` and ``prepare`` (from a frame
to arrays: columns found, timestamps parsed, outcomes classified), ``frequency``
(trailing counts, bands, marginal curve), ``sweetspot`` (change points), ``model`` (grouped
logistic regression), ``channels`` (channel and time patterns), ``recommendations``,
``analysis`` (the entry point and the result).
"""

from mlworker.analysis.policies.analysis import PolicyResult, analyze_policies
from mlworker.analysis.policies.columns import columns_needed
from mlworker.analysis.policies.config import PolicyConfig

__all__ = ["PolicyConfig", "PolicyResult", "analyze_policies", "columns_needed"]
