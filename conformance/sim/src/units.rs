//! Units shared by the engine, the LoRA slots and the fleet: a leaf, so that every module
//! can name them without depending on the engine.

/// Microseconds on the engine's clock. Real-time replicas use Unix time; virtual-time
/// fleets start at zero.
pub type Micros = u64;
