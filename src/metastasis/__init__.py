"""metastasis: a stochastic model of the metastatic cascade (educational, not medical advice)."""
