//! mc-objectstore (under construction).
