//! mc-webauthn (under construction).
