"""Preconditioners: optax-style init/update pairs (pSMILE noise scale, Mandt et al. optimal SGD)."""
