"""The web dashboard: watch a run, browse its agents, label replies (``socius serve``)."""
