//! Cross-crate integration scenarios of Maestro Conductor (see the `[[test]]`
//! targets of this package): how the crates behave together, as a host links them.
