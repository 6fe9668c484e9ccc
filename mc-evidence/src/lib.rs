//! mc-evidence (under construction).
