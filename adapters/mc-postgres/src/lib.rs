//! mc-postgres (under construction).
