//! mc-policy (under construction).
