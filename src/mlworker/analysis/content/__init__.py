"""Content analysis: which words and text attributes drive a creative's CTR, CVR or revenue.

``analyze_content(frame, ContentConfig(...))`` reads a creative table (one row per creative, or
per creative and day), sums the counts per creative, shrinks each creative's rate toward its
channel (empirical Bayes), fits a bounded random forest on TF-IDF terms and text attributes,
ranks features by permutation importance on held-out creatives, signs them, measures their lift
directly from the data and writes insights.

Modules: ``config`` (parameters), ``columns`` (column roles), ``aggregate`` (counts per
creative), ``rates`` (rates, shrinkage, peers, trend, baseline), ``features`` (TF-IDF and
attributes), ``importance`` (forest, permutation importance, signed effects), ``lifts`` (rate
with vs without a feature), ``insights`` (sentences), ``result`` and ``analysis`` (the entry
point).
"""

from mlworker.analysis.content.analysis import analyze_content
from mlworker.analysis.content.columns import columns_needed
from mlworker.analysis.content.config import ContentConfig
from mlworker.analysis.content.result import ContentResult

__all__ = ["ContentConfig", "ContentResult", "analyze_content", "columns_needed"]
